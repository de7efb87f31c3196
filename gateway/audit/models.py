"""Pydantic models of the audit API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

Outcome = Literal["success", "failure", "denied"]


class AuditRecord(BaseModel):
    """One row of the hash-chained log."""

    seq: int
    occurred_at: datetime
    source: str
    actor_id: UUID | None
    actor_name: str | None
    actor_role: str | None
    facility_id: UUID | None
    action: str
    object_type: str | None
    object_id: str | None
    outcome: str
    status_code: int | None
    client_addr: str | None
    request_id: str | None
    detail: dict[str, Any]
    hash: str = Field(description="sha256 of the previous hash and this row (hex)")


class AuditFilter(BaseModel):
    """What to look for; every field narrows the search."""

    since: datetime | None = None
    until: datetime | None = None
    actor_id: UUID | None = None
    actor_name: str | None = None
    facility_id: UUID | None = None
    action: str | None = Field(default=None, description="prefix: `auth.` finds every sign-in event")
    outcome: Outcome | None = None
    source: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    before_seq: int | None = Field(default=None, description="paging cursor: rows older than this one")
    limit: int = 100


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next_before_seq: int | None = Field(description="pass as before_seq for the next (older) page")


class ChainVerification(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    problem: str | None
    verified_at: datetime
