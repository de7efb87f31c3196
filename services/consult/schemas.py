"""Pydantic models of the consult service: rows as the repository returns them, and the HTTP shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["draft", "submitted", "accepted", "declined", "scheduled", "in_session", "opinion_written",
                 "signed", "closed", "cancelled"]
Urgency = Literal["emergency", "urgent", "routine"]
Sex = Literal["male", "female", "other", "unknown"]
ParticipantRole = Literal["requester", "consultant", "invitee"]
AttachmentKind = Literal["imaging_study", "ecg_recording", "pathology_case"]
GrantStatus = Literal["pending", "active", "revoked", "failed"]
Relation = Literal["本人", "配偶", "子女", "父母", "其他监护人"]


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class ConsultRow(_Row):
    """One row of consult.consults."""

    id: UUID
    facility_id: UUID
    requester_id: UUID
    requester_name: str
    patient_id: UUID | None = None
    patient_name: str = ""
    patient_sex: Sex = "unknown"
    patient_age: int | None = None
    target_facility_id: UUID
    target_department: str = ""
    specialty: str = ""
    consultant_id: UUID | None = None
    consultant_name: str | None = None
    urgency: Urgency = "routine"
    reason: str = ""
    question: str = ""
    clinical_summary: str = ""
    preferred_time: datetime | None = None
    status: Status
    respond_by: datetime | None = None
    opinion_by: datetime | None = None
    overdue_at: datetime | None = None
    escalated: list[str] = Field(default_factory=list)
    escalation_level: int = 0
    decline_reason: str | None = None
    cancel_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = None
    accepted_at: datetime | None = None
    declined_at: datetime | None = None
    cancelled_at: datetime | None = None
    closed_at: datetime | None = None


class ParticipantRow(_Row):
    id: UUID
    consult_id: UUID
    user_id: UUID
    display_name: str
    role: ParticipantRole
    user_facility_id: UUID
    added_at: datetime


class SessionParticipant(_Row):
    user_id: UUID
    display_name: str
    role: ParticipantRole


class SessionAccess(_Row):
    """What a video room needs to know about its session (services/consult/rooms/)."""

    consult_id: UUID
    session_id: UUID
    host_user_id: UUID
    participants: list[SessionParticipant]
    ended: bool


class SessionRow(_Row):
    id: UUID
    consult_id: UUID
    started_by: UUID
    host_user_id: UUID
    started_at: datetime
    ended_at: datetime | None = None


class AttachmentRow(_Row):
    id: UUID
    consult_id: UUID
    kind: AttachmentKind
    ref: str
    label: str
    added_by: UUID
    added_at: datetime


class ConsentRow(_Row):
    id: UUID
    consult_id: UUID
    method: Literal["signed_form", "e_consent"]
    signer_name: str
    relation: str
    statement_version: str
    statement_hash: str
    content_type: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    has_file: bool = False
    recorded_by: UUID
    recorded_by_name: str
    recorded_at: datetime
    withdrawn_at: datetime | None = None


class TransitionRow(_Row):
    id: UUID
    action: str
    from_status: str
    to_status: str
    actor_id: UUID
    actor_name: str
    detail: dict[str, Any] = Field(default_factory=dict)
    at: datetime


class GrantRow(_Row):
    id: UUID
    consult_id: UUID
    kind: AttachmentKind
    ref: str
    grantee_user_id: UUID
    status: GrantStatus
    remote_grant_id: str | None = None
    expires_at: datetime
    attempts: int = 0
    last_error: str | None = None
    applied_at: datetime | None = None
    revoke_requested_at: datetime | None = None
    revoked_at: datetime | None = None


# -- HTTP in -------------------------------------------------------------------------------------------


class ConsultFields(BaseModel):
    """The invitation's editable fields (every one optional when editing a draft)."""

    target_facility_id: UUID | None = None
    target_department: str | None = Field(default=None, max_length=100)
    specialty: str | None = Field(default=None, max_length=100)
    consultant_id: UUID | None = Field(default=None, description="a named specialist of the target facility")
    urgency: Urgency | None = None
    reason: str | None = Field(default=None, max_length=2000)
    question: str | None = Field(default=None, max_length=2000, description="the purpose: what to answer")
    clinical_summary: str | None = Field(default=None, max_length=20000)
    preferred_time: datetime | None = None
    patient_id: UUID | None = None
    patient_name: str | None = Field(default=None, max_length=100)
    patient_sex: Sex | None = None
    patient_age: int | None = Field(default=None, ge=0, le=150)


class ConsultCreateIn(ConsultFields):
    target_facility_id: UUID | None = Field(description="the facility asked (required)")


class AcceptIn(BaseModel):
    consultant_id: UUID | None = Field(default=None, description="default: the caller")


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ReassignIn(BaseModel):
    consultant_id: UUID
    reason: str = Field(default="", max_length=2000)


class CloseIn(BaseModel):
    note: str = Field(default="", max_length=2000)


class InviteIn(BaseModel):
    user_id: UUID


class EConsentIn(BaseModel):
    method: Literal["e_consent"] = "e_consent"
    signer_name: str = Field(min_length=1, max_length=100)
    relation: Relation
    statement_version: str = Field(min_length=1, max_length=50)


class AttachmentIn(BaseModel):
    kind: AttachmentKind
    ref: str = Field(min_length=1, max_length=200)
    label: str = Field(default="", max_length=200)


class SessionIn(BaseModel):
    note: str = Field(default="", max_length=500)


# -- HTTP out ------------------------------------------------------------------------------------------


class ConsultSummary(BaseModel):
    id: UUID
    status: Status
    urgency: Urgency
    facility_id: UUID
    target_facility_id: UUID
    target_department: str
    specialty: str
    requester_id: UUID
    requester_name: str
    consultant_id: UUID | None
    consultant_name: str | None
    patient_name: str
    patient_sex: Sex
    patient_age: int | None
    reason: str
    respond_by: datetime | None
    opinion_by: datetime | None
    overdue: bool
    overdue_at: datetime | None
    escalation_level: int
    created_at: datetime
    submitted_at: datetime | None
    updated_at: datetime


class Escalation(BaseModel):
    """An overdue consult escalated to the consulted facility (``consult.overdue``): ids, deadlines and levels
    only, no patient (facility admins see these too)."""

    consult_id: UUID
    status: Status
    urgency: Urgency
    facility_id: UUID = Field(description="the requesting facility")
    target_facility_id: UUID
    specialty: str
    consultant_id: UUID | None
    deadline: Literal["respond", "opinion"] = Field(description="the deadline now missed")
    due_at: datetime | None
    escalation_level: int
    overdue_at: datetime | None


class EscalationList(BaseModel):
    items: list[Escalation]


class ConsultList(BaseModel):
    items: list[ConsultSummary]
    box: Literal["outgoing", "incoming"]
    limit: int
    offset: int
    escalations: list[Escalation] = Field(
        default_factory=list,
        description="incoming box, specialists: your facility's escalated overdue consults (whatever the filters)")


class ConsentStatus(BaseModel):
    recorded: bool
    current: ConsentRow | None = None


class ConsultDetail(BaseModel):
    consult: ConsultRow
    my_roles: list[str] = Field(description="requesting, target, consultant, requester, invitee")
    allowed_actions: list[str]
    participants: list[ParticipantRow]
    attachments: list[AttachmentRow]
    consent: ConsentStatus
    history: list[TransitionRow]
    grants: list[GrantRow]
    sessions: list[SessionRow]
