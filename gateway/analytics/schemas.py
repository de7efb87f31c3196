"""Shapes of the analytics API: the intake batch and the answers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from common.events import EVENT_TYPE


class EventIn(BaseModel):
    """One relayed outbox event (common.events.OutboxEvent.to_wire)."""

    id: UUID
    event_type: str = Field(max_length=120)
    facility_id: UUID | None = None
    subject_type: str | None = Field(default=None, max_length=60)
    subject_id: str | None = Field(default=None, max_length=200)
    payload: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime

    @field_validator("event_type")
    @classmethod
    def _dotted(cls, v: str) -> str:
        if not EVENT_TYPE.match(v):
            raise ValueError("event_type must be dotted lower-case, e.g. 'ecg.report_signed'")
        return v

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("occurred_at needs a time zone")
        return v


class EventBatch(BaseModel):
    source: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")
    events: list[EventIn] = Field(max_length=1000)


class IntakeResult(BaseModel):
    accepted: int
    duplicates: int


class CountRow(BaseModel):
    period: str
    start: date
    event_type: str
    facility_id: UUID | None
    facility_name: str | None = None
    count: int


class EventCounts(BaseModel):
    period_type: str
    start: date
    end: date
    rows: list[CountRow]


class IndicatorRow(BaseModel):
    period: str
    start: date
    facility_id: UUID | None = Field(description="null: the whole scope of the caller")
    facility_name: str | None = None
    numerator: int
    denominator: int
    value: float | None = Field(description="numerator / denominator × factor; null when the denominator is 0")


class IndicatorValues(BaseModel):
    indicator: dict[str, Any]
    period_type: str
    start: date
    end: date
    rows: list[IndicatorRow]


class EventRef(BaseModel):
    """An event behind a number: where it came from and what it is about, never who the patient is."""

    event_id: UUID
    source: str
    event_type: str
    facility_id: UUID | None
    occurred_at: datetime
    subject_type: str | None
    subject_id: str | None


class EventPage(BaseModel):
    events: list[EventRef]
    next_cursor: int | None = Field(description="pass as 'after' for the next page; null at the end")
