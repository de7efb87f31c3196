"""Settings of the consult service, from ``CONSULT_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.config import ServiceSettings

# Minutes to answer (accept/decline) and to give the opinion, counted from submission, by urgency.
DEFAULT_DEADLINES: dict[str, dict[str, int]] = {
    "emergency": {"respond": 30, "opinion": 120},
    "urgent": {"respond": 240, "opinion": 1440},
    "routine": {"respond": 1440, "opinion": 4320},
}


class ConsultSettings(ServiceSettings):
    """Deadlines, limits and access to attached items of the consult workflow."""

    model_config = SettingsConfigDict(env_prefix="CONSULT_", extra="ignore", case_sensitive=False)

    # CONSULT_DEADLINES: JSON {"emergency": {"respond": 30, "opinion": 120}, ...}; missing entries keep defaults.
    deadlines: dict[str, dict[str, int]] = Field(default_factory=lambda: dict(DEFAULT_DEADLINES))
    # Days a consultant's grant to the attached items lives at most (expires_at on every grant); the grants
    # are revoked earlier, when the consult closes or is cancelled.
    access_days: int = Field(default=30, ge=1, le=365)
    # People on one consult (requester, consultant, invitees).
    max_participants: int = Field(default=4, ge=2, le=16)
    # Signed consent forms: largest upload, and the types accepted.
    max_consent_bytes: int = 20 * 1024 * 1024
    # The version of the e-consent statement text shown to patients (its hash is recorded with each consent).
    consent_statement_version: str = "2026-01"
    # Where the owning services and the gateway's directory live (default: common/services.py, GATEWAY_URL).
    imaging_url: str = ""
    ecg_url: str = ""
    # Grant retries: give up (status failed) after this many attempts.
    grant_max_attempts: int = Field(default=20, ge=1)

    def deadline_minutes(self, urgency: str, kind: str) -> int:
        merged = {**DEFAULT_DEADLINES.get(urgency, DEFAULT_DEADLINES["routine"]), **self.deadlines.get(urgency, {})}
        return int(merged[kind])


@lru_cache(maxsize=1)
def consult_settings() -> ConsultSettings:
    return ConsultSettings()
