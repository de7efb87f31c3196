"""Types of the imaging reading API: the worklist, report templates, the report, its addenda."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from common.signing import Addendum

Priority = Literal["stat", "urgent", "routine"]
PRIORITIES: tuple[str, ...] = ("stat", "urgent", "routine")
ReadingStatus = Literal["new", "assigned", "in_progress", "reported", "signed"]
STATUSES: tuple[str, ...] = ("new", "assigned", "in_progress", "reported", "signed")


class WorklistItem(BaseModel):
    study_instance_uid: str
    facility_id: UUID                      # the requesting (owner) facility
    priority: Priority
    status: ReadingStatus
    modalities: list[str]
    study_date: str | None
    study_description: str
    num_series: int
    num_instances: int
    received_at: datetime
    clinical_question: str
    assignee_id: UUID | None
    assignee_name: str | None
    report_id: UUID | None
    critical: bool


class Worklist(BaseModel):
    items: list[WorklistItem]
    limit: int
    offset: int


class PriorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    priority: Priority
    clinical_question: str | None = Field(default=None, max_length=2000)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UUID = Field(description="a specialist of the caller's reading facility (one the reading API knows)")


class Reader(BaseModel):
    user_id: UUID
    name: str


class Template(BaseModel):
    key: str
    modalities: list[str]
    title: str
    findings: str
    impression: str


class ReportDraftIn(BaseModel):
    """The reader's edit; ``version`` guards against overwriting another edit (409 when stale)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: int = Field(ge=1)
    findings: str | None = Field(default=None, max_length=20000)
    impression: str | None = Field(default=None, max_length=8000)
    critical: bool | None = Field(default=None, description="a critical finding: the requesting facility is told")
    critical_note: str | None = Field(default=None, max_length=2000)
    ready: bool | None = Field(default=None, description="true: the report is written (status reported)")


class AddendumIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(min_length=1, max_length=8000)


class Report(BaseModel):
    id: UUID
    study_instance_uid: str
    facility_id: UUID
    reading_facility_id: UUID
    status: Literal["draft", "signed"]
    modality: str
    template: str
    reader_id: UUID
    reader_name: str
    findings: str
    impression: str
    critical: bool
    critical_note: str
    version: int
    created_at: datetime
    updated_at: datetime
    signed_at: datetime | None
    signed_by: UUID | None
    signer_name: str | None
    content_hash: str | None
    turnaround_minutes: float | None
    on_time: bool | None
    pdf_ready: bool
    dicom_sop_instance_uid: str | None
    report_series_uid: str | None
    addenda: list[Addendum] = Field(default_factory=list)


class CriticalAlert(BaseModel):
    """A critical finding (影像危急值) for the requesting facility: who read it, what was found, its state."""

    id: UUID
    facility_id: UUID                      # the requesting facility (the study's owner)
    study_instance_uid: str
    report_id: UUID
    reading_facility_id: UUID
    reader_name: str
    modality: str
    priority: Priority
    note: str
    signed: bool
    message_zh: str
    message_en: str
    status: Literal["open", "acknowledged"]
    escalation_level: int
    escalated_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: UUID | None
    acknowledged_name: str | None
    acknowledge_note: str | None
    created_at: datetime
    # Per viewer, never stored: the alert is for the receiver's own facility (the requester must act on it).
    for_you: bool = False


class CriticalAlertList(BaseModel):
    items: list[CriticalAlert]


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: str | None = Field(default=None, max_length=2000, description="what was done (e.g. patient recalled)")
