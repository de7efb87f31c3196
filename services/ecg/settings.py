"""Settings of the ecg service, from ``ECG_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import SettingsConfigDict

from common.config import ServiceSettings


class EcgSettings(ServiceSettings):
    """Limits, alerting and turnaround targets of the ECG cloud."""

    model_config = SettingsConfigDict(env_prefix="ECG_", extra="ignore", case_sensitive=False)

    # Upload: the whole multipart body (a 24 h, 12-lead Holter at 1 kHz is ~2 GB of int16).
    max_upload_bytes: int = 2 * 1024**3
    # A .zip upload: members and their total unpacked size (zip-bomb guard).
    max_zip_members: int = 64
    max_unzipped_bytes: int = 3 * 1024**3
    # A record whose float32 signal is larger than this is streamed in chunks (ingest and analysis).
    whole_read_max_bytes: int = 128 * 1024**2
    ingest_chunk_seconds: float = 300.0
    # Records longer than this are analysed as long records (Holter summary, chunked, bounded memory).
    long_record_seconds: float = 60.0
    analysis_chunk_seconds: float = 300.0
    # Signal endpoint: most samples (leads x samples) one answer may carry.
    signal_max_points: int = 2_000_000

    # Critical values: escalate an alert nobody acknowledged within this many minutes, then again every
    # as many minutes, at most ``alert_max_escalations`` times. Level 1 (after N minutes) re-notifies the
    # on-duty reader and everyone at the reading centre; level 2 (after 2N) also flags it to the reading
    # centre's facility_admin.
    alert_escalation_minutes: float = 10.0
    alert_max_escalations: int = 3
    alert_channel_prefix: str = "ecg:alerts:"

    # Duty roster: the longest shift, and how far ahead one may be scheduled.
    duty_max_shift_hours: float = 24.0
    duty_max_days_ahead: float = 90.0

    # Turnaround targets (received -> signed), minutes, by priority: the bureau's on-time indicator.
    turnaround_routine_minutes: float = 24 * 60
    turnaround_urgent_minutes: float = 120
    turnaround_stat_minutes: float = 30

    # A CJK font for the PDF report (found in the usual OS places when empty).
    cjk_font: Path | None = None
    # The health_mgmt service, to check a patient_id against its register (default: common/services.py).
    health_mgmt_url: str = ""

    def turnaround_target(self, priority: str) -> float:
        return {
            "stat": self.turnaround_stat_minutes,
            "urgent": self.turnaround_urgent_minutes,
        }.get(priority, self.turnaround_routine_minutes)


@lru_cache(maxsize=1)
def ecg_settings() -> EcgSettings:
    return EcgSettings()
