"""The facility directory under ``/api/directory``: the names of the caller's region's facilities.

Any signed-in user may read it (facility names are not patient data, and no person is listed), so that the
services' pages can show "城关镇卫生院" for a ``facility_id`` without reading the gateway's schema. Each call
is audited by the platform middleware like every other route.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from common.auth import CLINICAL_ROLES, Principal, Role
from common.db import Database
from gateway.identity import facility_repository as facilities
from gateway.identity.deps import database, gateway_principal
from gateway.identity.models import DirectoryFacility

router = APIRouter(prefix="/api/directory", tags=["directory"])

# Names change rarely; a page may keep the list for a few minutes.
CACHE_CONTROL = "private, max-age=300"


@router.get("/facilities", response_model=list[DirectoryFacility])
async def facility_directory(
    response: Response,
    principal: Principal = Depends(gateway_principal),
    db: Database = Depends(database),
) -> list[DirectoryFacility]:
    """Every facility of your region (the region itself, its hospitals, townships and villages, active or
    not): ``id, parent_id, kind, level, code, name_zh, name_en``, ordered by code."""
    async with db.transaction(principal) as conn:
        root: UUID | None = principal.region_id
        if root is None:  # a facility outside any region: its own tree
            root = await facilities.region_of(conn, principal.facility_id) or await facilities.top_of(
                conn, principal.facility_id
            )
        found = await facilities.directory(conn, root) if root is not None else []
    response.headers["Cache-Control"] = CACHE_CONTROL
    return found


class DirectoryClinician(BaseModel):
    """A clinician as the consult pages may list them: id, name, facility, roles (no contact details)."""

    user_id: UUID
    display_name: str
    facility_id: UUID
    roles: list[str]


async def _clinicians(principal: Principal, db: Database, facility_id: UUID,
                      roles: list[str]) -> list[DirectoryClinician]:
    async with db.transaction(principal) as conn:
        root: UUID | None = principal.region_id
        if root is None:
            root = await facilities.region_of(conn, principal.facility_id) or await facilities.top_of(
                conn, principal.facility_id
            )
        rows = await facilities.clinicians_in_tree(conn, root, facility_id, roles) if root is not None else []
    return [DirectoryClinician(user_id=r["user_id"], display_name=r["display_name"], facility_id=r["facility_id"],
                               roles=[x for x in r["roles"] if x in CLINICAL_ROLES]) for r in rows]


@router.get("/specialists", response_model=list[DirectoryClinician])
async def specialist_directory(
    response: Response,
    facility_id: UUID = Query(description="a facility of your region"),
    principal: Principal = Depends(gateway_principal),
    db: Database = Depends(database),
) -> list[DirectoryClinician]:
    """The active specialists of a facility of your region (the consult target picker)."""
    found = await _clinicians(principal, db, facility_id, [Role.SPECIALIST])
    response.headers["Cache-Control"] = CACHE_CONTROL
    return found


@router.get("/clinicians", response_model=list[DirectoryClinician])
async def clinician_directory(
    response: Response,
    facility_id: UUID = Query(description="a facility of your region"),
    principal: Principal = Depends(gateway_principal),
    db: Database = Depends(database),
) -> list[DirectoryClinician]:
    """The active clinicians (doctors, technicians, specialists, public-health doctors) of a facility of your
    region: whom a consult may invite."""
    found = await _clinicians(principal, db, facility_id, sorted(CLINICAL_ROLES))
    response.headers["Cache-Control"] = CACHE_CONTROL
    return found
