"""AE titles of DIMSE peers (``imaging.ae_titles``), for administrators: a facility admin manages its own
facility's, the platform admin anyone's. The DIMSE listener reads the registry on every association, so a
change applies to the next association. Every request is audited by the service app."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, model_validator

from common.auth import Principal, Role, require_roles
from common.errors import Conflict, Forbidden
from services.imaging import dimse_registry as registry
from services.imaging.dimse_registry import RegisteredAE

router = APIRouter(prefix="/api/imaging/ae-titles", tags=["imaging-dimse"])
ADMINS = require_roles(Role.FACILITY_ADMIN, Role.PLATFORM_ADMIN)
AE_PATTERN = r"^[!-\[\]-~]([ -\[\]-~]*[!-\[\]-~])?$"  # printable ASCII, no backslash, no edge spaces


class AeTitleIn(BaseModel):
    ae_title: str = Field(min_length=1, max_length=16, pattern=AE_PATTERN)
    facility_id: UUID | None = None  # default: the caller's facility
    host: str | None = Field(default=None, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:\-]+$")
    port: int | None = Field(default=None, ge=1, le=65535)
    description: str = Field(default="", max_length=200)
    active: bool = True

    @model_validator(mode="after")
    def _host_and_port(self) -> AeTitleIn:
        if (self.host is None) != (self.port is None):
            raise ValueError("host and port go together (a C-MOVE destination needs both)")
        return self


class AeTitleOut(BaseModel):
    ae_title: str
    facility_id: UUID
    host: str | None
    port: int | None
    description: str
    active: bool


def _out(ae: RegisteredAE) -> AeTitleOut:
    return AeTitleOut(**ae.__dict__)


def _may_manage(principal: Principal, facility_id: UUID) -> None:
    if not principal.has_role(Role.PLATFORM_ADMIN) and facility_id != principal.facility_id:
        raise Forbidden("a facility admin manages the AE titles of its own facility only")


@router.get("")
async def list_ae_titles(request: Request, facility_id: UUID | None = None,
                         principal: Principal = Depends(ADMINS)) -> list[AeTitleOut]:
    if not principal.has_role(Role.PLATFORM_ADMIN):
        facility_id = principal.facility_id
    return [_out(a) for a in await registry.list_for(request.app.state.db, facility_id)]


@router.put("")
async def put_ae_title(body: AeTitleIn, request: Request, principal: Principal = Depends(ADMINS)) -> AeTitleOut:
    """Register, change or deactivate (``active: false``) an AE title: the DICOM peer's calling AE title.

    The title is in the body, not the path: an administrator's object, not a patient's (a facility admin
    naming another facility's title gets 409; no path ids, so nothing to probe)."""
    facility = body.facility_id or principal.facility_id
    _may_manage(principal, facility)
    db = request.app.state.db
    existing = await registry.get(db, body.ae_title)
    if existing is not None and existing.facility_id != facility and not principal.has_role(Role.PLATFORM_ADMIN):
        raise Conflict("this AE title is registered to another facility")
    saved = await registry.register(db, body.ae_title, facility, host=body.host, port=body.port,
                                    description=body.description, active=body.active)
    return _out(saved)
