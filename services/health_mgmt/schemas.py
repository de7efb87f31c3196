"""Pydantic models of the health-management service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.health_mgmt.identity import normalize_id_number, validate_mobile

Sex = Literal["male", "female", "unknown"]


class PatientIn(BaseModel):
    """A patient to register at the caller's facility."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100, description="姓名")
    id_number: str | None = Field(default=None, description="居民身份证号, 18 characters, checksum verified")
    sex: Sex | None = Field(default=None, description="derived from the ID number when omitted")
    birth_date: date | None = Field(default=None, description="derived from the ID number when omitted")
    phone: str | None = Field(default=None, description="mainland mobile number, 11 digits")
    address: str | None = Field(default=None, max_length=300)

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, v: str | None) -> str | None:
        return normalize_id_number(v) if v else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return validate_mobile(v) if v else None


class PatientPatch(BaseModel):
    """Fields to change; ``version`` guards against overwriting someone else's edit."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: int = Field(ge=1)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    sex: Sex | None = None
    birth_date: date | None = None
    phone: str | None = None
    address: str | None = Field(default=None, max_length=300)

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return validate_mobile(v) if v else None


class Patient(BaseModel):
    id: UUID
    facility_id: UUID
    name: str
    id_number: str | None
    sex: Sex
    birth_date: date | None
    phone: str | None
    address: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class PatientPage(BaseModel):
    items: list[Patient]
    limit: int
    offset: int
