"""User administration rules: accounts, roles, passwords, lockout and the second factor.

Within the caller's scope (admin_service.AdminScope). A facility admin grants clinical roles and
facility_admin only (never platform_admin or bureau_analyst) and cannot change a platform admin's account.
Nobody deactivates themselves or takes away their own administrator role. An administrator role needs an
enrolled TOTP authenticator; creating an administrator enrols one and returns its URI, once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from common import audit
from common.auth import Role
from common.errors import Conflict, Forbidden, Invalid, NotFound
from gateway.identity import facility_repository as facilities
from gateway.identity import repository as repo
from gateway.identity.admin_service import AdminScope, facility_in_scope
from gateway.identity.context import RequestContext
from gateway.identity.mfa import TotpSeal, new_secret, provisioning_uri
from gateway.identity.models import (
    ADMIN_ROLES,
    TotpEnrolment,
    UserCreate,
    UserCreated,
    UserPage,
    UserRecord,
    UserSummary,
    UserUpdate,
)
from gateway.identity.passwords import hash_password, password_problem

FACILITY_ADMIN_GRANTS = frozenset(
    {Role.TOWNSHIP_DOCTOR, Role.TECHNICIAN, Role.SPECIALIST, Role.PUBLIC_HEALTH, Role.FACILITY_ADMIN}
)
NOT_NULL = frozenset({"display_name", "facility_id", "roles", "active"})


def _check_grants(scope: AdminScope, roles: list[str]) -> None:
    if scope.is_platform:
        return
    refused = sorted(set(roles) - FACILITY_ADMIN_GRANTS)
    if refused:
        raise Forbidden(f"a facility admin cannot grant: {', '.join(refused)}")


def _check_password(password: str, username: str) -> None:
    problem = password_problem(password, username)
    if problem:
        raise Invalid(f"password: {problem}")


async def _target(conn: asyncpg.Connection, scope: AdminScope, user_id: UUID) -> UserRecord:
    """The user to change, row-locked; 404 outside the scope; 403 for a platform admin seen by a
    facility admin."""
    user = await repo.user_record(conn, user_id, for_update=True)
    if user is None or not scope.covers(user.facility_id):
        raise NotFound(f"no such user: {user_id}")
    if not scope.is_platform and Role.PLATFORM_ADMIN in user.roles:
        raise Forbidden("a facility admin cannot change a platform admin's account")
    return user


async def _active_facility(conn: asyncpg.Connection, scope: AdminScope, facility_id: UUID) -> None:
    facility = await facility_in_scope(conn, scope, facility_id)
    if not facility.active:
        raise Invalid("facility_id: the facility is deactivated")


async def _summary(conn: asyncpg.Connection, user_id: UUID) -> UserSummary:
    found = await repo.user_summary(conn, user_id)
    assert found is not None
    return found


async def list_users(
    conn: asyncpg.Connection,
    scope: AdminScope,
    *,
    facility_id: UUID | None,
    include_descendants: bool,
    role: str | None,
    query: str | None,
    active: bool | None,
    limit: int,
    offset: int,
) -> UserPage:
    ids: list[UUID] | None = sorted(scope.facility_ids) if scope.facility_ids is not None else None
    if facility_id is not None:
        await facility_in_scope(conn, scope, facility_id)
        below = await facilities.subtree_ids(conn, facility_id) if include_descendants else [facility_id]
        ids = [f for f in below if scope.covers(f)]
    items, total = await repo.list_users(
        conn, facility_ids=ids, role=role, query=query, active=active, limit=limit, offset=offset
    )
    return UserPage(items=items, total=total, limit=limit, offset=offset)


async def get_user(conn: asyncpg.Connection, scope: AdminScope, user_id: UUID) -> UserSummary:
    found = await repo.user_summary(conn, user_id)
    if found is None or not scope.covers(found.facility.id):
        raise NotFound(f"no such user: {user_id}")
    return found


async def create_user(
    conn: asyncpg.Connection, scope: AdminScope, data: UserCreate, seal: TotpSeal, ctx: RequestContext
) -> UserCreated:
    roles = [str(r) for r in data.roles]
    _check_password(data.password, data.username)
    await _active_facility(conn, scope, data.facility_id)
    _check_grants(scope, roles)
    if await repo.user_for_login(conn, data.username) is not None:
        raise Conflict(f"the username {data.username} is taken")
    user_id = uuid.uuid4()
    password_hash = await hash_password(data.password)
    secret = new_secret() if ADMIN_ROLES.intersection(roles) else None
    await repo.insert_user(
        conn,
        user_id=user_id,
        username=data.username,
        display_name=data.display_name,
        facility_id=data.facility_id,
        roles=roles,
        password_hash=password_hash,
        totp_secret=seal.seal(user_id, secret) if secret else None,
    )
    await audit.write(
        conn,
        ctx.entry(
            scope.principal,
            action="admin.user.create",
            status=201,
            object_type="user",
            object_id=user_id,
            detail={"roles": sorted(roles), "mfa": bool(secret), "facility_id": str(data.facility_id)},
        ),
    )
    enrolment = (
        TotpEnrolment(user_id=user_id, otpauth_uri=provisioning_uri(secret, data.username), secret=secret)
        if secret
        else None
    )
    return UserCreated(**(await _summary(conn, user_id)).model_dump(), totp=enrolment)


async def update_user(
    conn: asyncpg.Connection,
    scope: AdminScope,
    user_id: UUID,
    data: UserUpdate,
    ctx: RequestContext,
    *,
    action: str = "admin.user.update",
) -> UserSummary:
    user = await _target(conn, scope, user_id)
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    for name in NOT_NULL.intersection(changes):
        if changes[name] is None:
            raise Invalid(f"{name}: must not be null")
    if "roles" in changes:
        changes["roles"] = sorted(str(r) for r in changes["roles"])
    changes = {k: v for k, v in changes.items() if v != (sorted(user.roles) if k == "roles" else getattr(user, k))}
    is_self = user.id == scope.principal.user_id
    if "facility_id" in changes:
        await _active_facility(conn, scope, changes["facility_id"])
        if is_self:
            raise Forbidden("you cannot move your own account to another facility")
    if "roles" in changes:
        _check_grants(scope, changes["roles"])
        if is_self and ADMIN_ROLES.intersection(user.roles) - set(changes["roles"]):
            raise Forbidden("you cannot take away your own administrator role")
        if ADMIN_ROLES.intersection(changes["roles"]) and user.totp_secret is None:
            raise Invalid(
                f"roles: an administrator needs a TOTP authenticator; enrol one first "
                f"(POST /api/admin/users/{user_id}/totp)"
            )
    if changes.get("active") is False:
        if is_self:
            raise Forbidden("you cannot deactivate your own account")
        await repo.revoke_user_tokens(conn, user_id, datetime.now(UTC), "deactivated")
    await repo.update_user(conn, user_id, changes)
    if changes:
        await audit.write(
            conn,
            ctx.entry(
                scope.principal,
                action=action,
                object_type="user",
                object_id=user_id,
                detail={"fields": sorted(changes)},
            ),
        )
    return await _summary(conn, user_id)


async def deactivate_user(
    conn: asyncpg.Connection, scope: AdminScope, user_id: UUID, ctx: RequestContext
) -> UserSummary:
    return await update_user(conn, scope, user_id, UserUpdate(active=False), ctx, action="admin.user.deactivate")


async def reset_password(
    conn: asyncpg.Connection, scope: AdminScope, user_id: UUID, password: str, ctx: RequestContext
) -> UserSummary:
    """Set a new password, clear the lock, and end the user's sessions (refresh tokens)."""
    user = await _target(conn, scope, user_id)
    _check_password(password, user.username)
    await repo.set_password_hash(conn, user_id, await hash_password(password), reset_lock=True)
    revoked = await repo.revoke_user_tokens(conn, user_id, datetime.now(UTC), "password_reset")
    await audit.write(
        conn,
        ctx.entry(
            scope.principal,
            action="admin.user.reset_password",
            object_type="user",
            object_id=user_id,
            detail={"sessions_revoked": revoked},
        ),
    )
    return await _summary(conn, user_id)


async def unlock_user(conn: asyncpg.Connection, scope: AdminScope, user_id: UUID, ctx: RequestContext) -> UserSummary:
    user = await _target(conn, scope, user_id)
    await repo.unlock(conn, user_id)
    await audit.write(
        conn,
        ctx.entry(
            scope.principal,
            action="admin.user.unlock",
            object_type="user",
            object_id=user_id,
            detail={"was_locked": user.locked_until is not None},
        ),
    )
    return await _summary(conn, user_id)


async def enrol_totp(
    conn: asyncpg.Connection, scope: AdminScope, user_id: UUID, seal: TotpSeal, ctx: RequestContext
) -> TotpEnrolment:
    """(Re-)enrol a TOTP authenticator; the secret is returned now and never again."""
    user = await _target(conn, scope, user_id)
    secret = new_secret()
    await repo.set_totp_secret(conn, user_id, seal.seal(user_id, secret))
    await audit.write(
        conn,
        ctx.entry(
            scope.principal,
            action="admin.user.enrol_totp",
            object_type="user",
            object_id=user_id,
            detail={"replaced": user.totp_secret is not None},
        ),
    )
    return TotpEnrolment(user_id=user_id, otpauth_uri=provisioning_uri(secret, user.username), secret=secret)
