"""Pydantic models of identity: facilities, users, tokens, and the admin API's inputs and outputs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from common.auth import Role

FacilityKind = Literal["region", "hospital", "township", "village"]
ADMIN_ROLES = frozenset({Role.FACILITY_ADMIN.value, Role.PLATFORM_ADMIN.value})

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,63}$")
CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,39}$")


class FacilityRef(BaseModel):
    id: UUID
    name_zh: str
    name_en: str
    kind: FacilityKind


class Facility(FacilityRef):
    parent_id: UUID | None
    level: str | None
    code: str
    reading_centre_id: UUID | None
    active: bool
    created_at: datetime
    updated_at: datetime


class FacilityNode(Facility):
    children: list[FacilityNode] = Field(default_factory=list)


class DirectoryFacility(BaseModel):
    """A facility as every signed-in user may see it (``GET /api/directory/facilities``): names, no people."""

    id: UUID
    parent_id: UUID | None
    kind: FacilityKind
    level: str | None
    code: str
    name_zh: str
    name_en: str


def _nonblank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _facility_code(value: str) -> str:
    value = value.strip().upper()
    if not CODE_PATTERN.match(value):
        raise ValueError("2-40 characters: A-Z, 0-9, '-' or '_', starting with a letter or digit")
    return value


def _username(value: str) -> str:
    value = value.strip().lower()
    if not USERNAME_PATTERN.match(value):
        raise ValueError("3-64 characters: a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
    return value


def _role_set(value: list[Role]) -> list[Role]:
    unique = sorted(set(value))
    if not unique:
        raise ValueError("at least one role is required")
    return unique


Name = Annotated[str, Field(max_length=200), AfterValidator(_nonblank)]
FacilityCode = Annotated[str, AfterValidator(_facility_code)]
Username = Annotated[str, AfterValidator(_username)]
Roles = Annotated[list[Role], AfterValidator(_role_set)]


class FacilityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parent_id: UUID | None = None
    kind: FacilityKind
    level: str | None = Field(default=None, max_length=40)
    code: FacilityCode
    name_zh: Name
    name_en: str = Field(default="", max_length=200)
    reading_centre_id: UUID | None = None
    active: bool = True


class FacilityUpdate(BaseModel):
    """Fields to change; an explicit ``null`` clears ``parent_id``, ``level`` or ``reading_centre_id``."""

    model_config = ConfigDict(extra="forbid")

    parent_id: UUID | None = None
    kind: FacilityKind | None = None
    level: str | None = Field(default=None, max_length=40)
    code: FacilityCode | None = None
    name_zh: Name | None = None
    name_en: str | None = Field(default=None, max_length=200)
    reading_centre_id: UUID | None = None
    active: bool | None = None


class UserRecord(BaseModel):
    """A user row as the login needs it (secrets included): never leaves the service layer."""

    id: UUID
    username: str
    display_name: str
    facility_id: UUID
    roles: list[str]
    password_hash: str
    totp_secret: bytes | None
    failed_attempts: int
    locked_until: datetime | None
    active: bool
    facility_active: bool
    facility: FacilityRef

    @property
    def needs_second_factor(self) -> bool:
        return bool(ADMIN_ROLES.intersection(self.roles)) or self.totp_secret is not None


class UserSummary(BaseModel):
    """A user as the admin API shows it: no password hash, no TOTP secret."""

    id: UUID
    username: str
    display_name: str
    facility: FacilityRef
    roles: list[str]
    active: bool
    mfa_enrolled: bool
    failed_attempts: int
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TotpEnrolment(BaseModel):
    """Shown exactly once, when the secret is enrolled."""

    user_id: UUID
    otpauth_uri: str
    secret: str


class UserCreated(UserSummary):
    totp: TotpEnrolment | None = None


class UserPage(BaseModel):
    items: list[UserSummary]
    total: int
    limit: int
    offset: int


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    display_name: Name
    facility_id: UUID
    roles: Roles
    password: str = Field(repr=False, max_length=1024)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: Name | None = None
    facility_id: UUID | None = None
    roles: Roles | None = None
    active: bool | None = None


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(repr=False, max_length=1024)


class TokenUser(BaseModel):
    id: UUID
    username: str
    display_name: str
    roles: list[str]
    facility: FacilityRef


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int
    refresh_token: str
    user: TokenUser


class Me(TokenUser):
    """The signed-in user, as of now (roles or facility may have changed since the token was issued)."""

    serves: list[UUID]
    region_id: UUID | None
    mfa_enrolled: bool


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(default=None, repr=False)


class RefreshTokenRecord(BaseModel):
    id: UUID
    user_id: UUID
    family_id: UUID
    expires_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
