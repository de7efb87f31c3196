"""HTTP of administration under ``/api/admin``: the facility tree and user accounts.

Platform admins administer everything; facility admins their own facility's subtree (anything else is
404). Every change is audited. Validation errors answer 422, duplicates 409.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response

from common.auth import Principal, Role
from common.db import Database
from gateway.identity import admin_service, user_admin_service
from gateway.identity.admin_service import AdminScope
from gateway.identity.context import RequestContext
from gateway.identity.deps import database, require_admin
from gateway.identity.mfa import TotpSeal, totp_seal
from gateway.identity.models import (
    Facility,
    FacilityCreate,
    FacilityNode,
    FacilityUpdate,
    PasswordReset,
    TotpEnrolment,
    UserCreate,
    UserCreated,
    UserPage,
    UserSummary,
    UserUpdate,
)

router = APIRouter(prefix="/api/admin", tags=["admin"])


class AdminCall:
    """One admin request: the caller, the database and where the request came from."""

    def __init__(
        self, request: Request, principal: Principal = Depends(require_admin), db: Database = Depends(database)
    ):
        self.principal = principal
        self.db = db
        self.ctx = RequestContext.of(request)

    @asynccontextmanager
    async def scoped(self) -> AsyncIterator[tuple[asyncpg.Connection, AdminScope]]:
        async with self.db.transaction(self.principal) as conn:
            yield conn, await admin_service.admin_scope(conn, self.principal)


def seal() -> TotpSeal:
    return totp_seal()


# -- facilities --------------------------------------------------------------------------------------


@router.get("/facilities", response_model=list[FacilityNode])
async def facility_tree(call: AdminCall = Depends()) -> list[FacilityNode]:
    """The facilities you administer, as a tree (region → hospital → township → village)."""
    async with call.scoped() as (conn, scope):
        return await admin_service.facility_tree(conn, scope)


@router.get("/facilities/{facility_id}", response_model=Facility)
async def get_facility(facility_id: UUID, call: AdminCall = Depends()) -> Facility:
    """One facility you administer."""
    async with call.scoped() as (conn, scope):
        return await admin_service.facility_in_scope(conn, scope, facility_id)


@router.post("/facilities", response_model=Facility, status_code=201)
async def create_facility(body: FacilityCreate, call: AdminCall = Depends()) -> Facility:
    """Add a facility under one you administer (a root region: platform admins only)."""
    async with call.scoped() as (conn, scope):
        return await admin_service.create_facility(conn, scope, body, call.ctx)


@router.patch("/facilities/{facility_id}", response_model=Facility)
async def update_facility(facility_id: UUID, body: FacilityUpdate, call: AdminCall = Depends()) -> Facility:
    """Change a facility: names, code, level, parent (no cycles), reading centre (a hospital), active."""
    async with call.scoped() as (conn, scope):
        return await admin_service.update_facility(conn, scope, facility_id, body, call.ctx)


# -- users -------------------------------------------------------------------------------------------


@router.get("/users", response_model=UserPage)
async def list_users(
    call: AdminCall = Depends(),
    facility_id: UUID | None = Query(None, description="only users of this facility"),
    include_descendants: bool = Query(True, description="with facility_id: also its subtree"),
    role: Role | None = Query(None),
    q: str | None = Query(None, max_length=100, description="part of the username or display name"),
    active: bool | None = Query(None),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> UserPage:
    """Users of the facilities you administer, by username, one page at a time."""
    async with call.scoped() as (conn, scope):
        return await user_admin_service.list_users(
            conn,
            scope,
            facility_id=facility_id,
            include_descendants=include_descendants,
            role=role.value if role else None,
            query=q,
            active=active,
            limit=limit,
            offset=offset,
        )


@router.get("/users/{user_id}", response_model=UserSummary)
async def get_user(user_id: UUID, call: AdminCall = Depends()) -> UserSummary:
    """One user of a facility you administer."""
    async with call.scoped() as (conn, scope):
        return await user_admin_service.get_user(conn, scope, user_id)


@router.post("/users", response_model=UserCreated, status_code=201)
async def create_user(
    body: UserCreate, response: Response, call: AdminCall = Depends(), totp: TotpSeal = Depends(seal)
) -> UserCreated:
    """Create an account. For an administrator the response carries `totp.otpauth_uri`, shown only now."""
    response.headers["Cache-Control"] = "no-store"
    async with call.scoped() as (conn, scope):
        return await user_admin_service.create_user(conn, scope, body, totp, call.ctx)


@router.patch("/users/{user_id}", response_model=UserSummary)
async def update_user(user_id: UUID, body: UserUpdate, call: AdminCall = Depends()) -> UserSummary:
    """Change display name, facility, roles or active. Deactivation ends the user's sessions."""
    async with call.scoped() as (conn, scope):
        return await user_admin_service.update_user(conn, scope, user_id, body, call.ctx)


@router.post("/users/{user_id}/deactivate", response_model=UserSummary)
async def deactivate_user(user_id: UUID, call: AdminCall = Depends()) -> UserSummary:
    """Deactivate an account and revoke its refresh tokens (reactivate with PATCH `active: true`)."""
    async with call.scoped() as (conn, scope):
        return await user_admin_service.deactivate_user(conn, scope, user_id, call.ctx)


@router.post("/users/{user_id}/password", response_model=UserSummary)
async def reset_password(user_id: UUID, body: PasswordReset, call: AdminCall = Depends()) -> UserSummary:
    """Set a new password (8+ characters, three character classes); unlocks and ends sessions."""
    async with call.scoped() as (conn, scope):
        return await user_admin_service.reset_password(conn, scope, user_id, body.password, call.ctx)


@router.post("/users/{user_id}/unlock", response_model=UserSummary)
async def unlock_user(user_id: UUID, call: AdminCall = Depends()) -> UserSummary:
    """Lift a lockout and clear the failed-attempt count."""
    async with call.scoped() as (conn, scope):
        return await user_admin_service.unlock_user(conn, scope, user_id, call.ctx)


@router.post("/users/{user_id}/totp", response_model=TotpEnrolment)
async def enrol_totp(
    user_id: UUID, response: Response, call: AdminCall = Depends(), totp: TotpSeal = Depends(seal)
) -> TotpEnrolment:
    """(Re-)enrol a TOTP authenticator. The `otpauth://` URI and secret are returned once, never again."""
    response.headers["Cache-Control"] = "no-store"
    async with call.scoped() as (conn, scope):
        return await user_admin_service.enrol_totp(conn, scope, user_id, totp, call.ctx)
