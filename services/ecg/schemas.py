"""Pydantic models of the ecg service (what the API answers and accepts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from common.signing import Addendum

Priority = Literal["routine", "urgent", "stat"]
RecordingStatus = Literal["new", "analysing", "ready", "in_review", "signed", "failed"]
PRIORITIES: tuple[str, ...] = ("routine", "urgent", "stat")
# From this escalation level on, an unacknowledged critical value is flagged to the reading centre's
# facility_admin too (``to_admin``).
ADMIN_ESCALATION_LEVEL = 2
STATUSES: tuple[str, ...] = ("new", "analysing", "ready", "in_review", "signed", "failed")


class OriginalFile(BaseModel):
    name: str
    key: str
    size: int
    sha256: str
    content_type: str


class SignalLayout(BaseModel):
    """How the compact signal object is laid out: an .npy of int16, samples x leads, row-major."""

    dtype: str = "<i2"
    offset: int  # bytes of the .npy header: sample row r starts at offset + r * leads * 2
    samples: int
    leads: int
    gain_mv: list[float]  # mV per count, per lead; the missing-sample code is -32768


class RecordingSummary(BaseModel):
    """A recording in lists and worklists (no analysis, no measurements)."""

    id: UUID
    facility_id: UUID
    patient_id: UUID | None
    priority: Priority
    status: RecordingStatus
    critical: bool
    source_format: str
    fs: float
    lead_names: list[str]
    duration_s: float
    start_time: datetime | None
    received_at: datetime
    analysed_at: datetime | None
    signed_at: datetime | None
    reader_name: str | None = None


class Recording(RecordingSummary):
    """One recording with what the device and the machine reading said."""

    uploaded_by: UUID
    clinical_note: str | None
    n_samples: int
    device: dict[str, Any]
    device_measurements: dict[str, Any]
    file_patient: dict[str, Any]
    warnings: list[str]
    original_files: list[dict[str, Any]]
    analysis_error: str | None
    analysis: dict[str, Any] | None = None
    findings: list[dict[str, Any]] = Field(default_factory=list)
    alert_id: UUID | None = None
    report_id: UUID | None = None


class RecordingPage(BaseModel):
    items: list[RecordingSummary]
    limit: int
    offset: int


class Alert(BaseModel):
    id: UUID
    facility_id: UUID
    recording_id: UUID
    patient_id: UUID | None = None  # the recording's patient in the health_mgmt register, when it has one
    finding: str
    findings: list[dict[str, Any]]
    message_zh: str
    message_en: str
    priority: Priority
    status: Literal["open", "acknowledged"]
    escalation_level: int
    escalated_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: UUID | None
    acknowledged_name: str | None
    acknowledge_note: str | None
    created_at: datetime
    # The reader(s) on duty at the reading centre when the alert was raised (and those on duty when it
    # escalated); empty: nobody was on duty, the alert went to every reader of the centre.
    assigned_to: list[UUID] = Field(default_factory=list)
    assigned_names: list[str] = Field(default_factory=list)
    # Per viewer: the alert is assigned to the user reading it (set for each receiver, never stored).
    for_you: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def unassigned(self) -> bool:
        """Nobody was on duty: every reader of the reading centre is asked."""
        return not self.assigned_to

    @computed_field  # type: ignore[prop-decorator]
    @property
    def to_admin(self) -> bool:
        """Escalated far enough to be flagged to the reading centre's facility_admin."""
        return self.escalation_level >= ADMIN_ESCALATION_LEVEL


class AlertList(BaseModel):
    items: list[Alert]


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: str | None = Field(default=None, max_length=1000, description="what was done (called the patient...)")


class Statement(BaseModel):
    """One interpretation statement; ``source`` says whether the machine or the reader wrote it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str | None = Field(default=None, max_length=64)
    zh: str = Field(default="", max_length=500)
    en: str = Field(default="", max_length=500)
    source: Literal["machine", "reader"] = "reader"


class ReportDraftIn(BaseModel):
    """The reader's edit of the draft; ``version`` guards against overwriting another edit."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: int = Field(ge=1)
    measurements: dict[str, float | int | str | None] | None = Field(
        default=None, description="confirmed or corrected measurements (hr_bpm, pr_ms, qrs_ms, qt_ms, qtc_ms, axes)"
    )
    statements: list[Statement] | None = Field(default=None, max_length=50)
    conclusion: str | None = Field(default=None, max_length=4000)


class AddendumIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(min_length=1, max_length=4000)


class Report(BaseModel):
    id: UUID
    recording_id: UUID
    facility_id: UUID
    status: Literal["draft", "signed"]
    reader_id: UUID
    reader_name: str
    measurements: dict[str, Any]
    statements: list[dict[str, Any]]
    conclusion: str
    version: int
    claimed_at: datetime
    updated_at: datetime
    signed_at: datetime | None
    signed_by: UUID | None
    signer_name: str | None
    content_hash: str | None
    turnaround_minutes: float | None
    on_time: bool | None
    pdf_ready: bool
    dicom_ready: bool
    addenda: list[Addendum] = Field(default_factory=list)


class WorklistItem(RecordingSummary):
    finding: str | None = None
    alert_status: str | None = None


class Worklist(BaseModel):
    items: list[WorklistItem]
    limit: int
    offset: int


# -- the duty roster (值班) ------------------------------------------------------------------------------


class DutyShiftIn(BaseModel):
    """A shift to put on the roster of the caller's facility. ``user_id`` defaults to the caller (a
    specialist putting themselves on duty); a facility_admin may name any specialist of the facility. The
    end is ``ends_at`` or ``hours`` after the start; the start defaults to now."""

    model_config = ConfigDict(extra="forbid")

    user_id: UUID | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    hours: float | None = Field(default=None, gt=0, description="length of the shift, instead of ends_at")

    @model_validator(mode="after")
    def _one_end(self) -> DutyShiftIn:
        if (self.ends_at is None) == (self.hours is None):
            raise ValueError("give exactly one of ends_at and hours")
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-03-01T08:00:00+08:00)")
        return self


class DutyShift(BaseModel):
    id: UUID
    facility_id: UUID
    user_id: UUID
    display_name: str
    starts_at: datetime
    ends_at: datetime
    created_by: UUID
    created_by_name: str
    created_at: datetime


class DutyList(BaseModel):
    items: list[DutyShift]


class DutyNow(BaseModel):
    """Who is on duty now for the caller: at the caller's own facility and at the reading centre(s) that
    read for it. ``facility_ids`` are the facilities whose rosters were asked."""

    facility_ids: list[UUID]
    items: list[DutyShift]
