"""Administration rules: who administers what (the scope), and the facility tree.

A platform admin administers everything. A facility admin administers their own facility and everything
below it; anything outside answers 404, exactly like something that does not exist. The tree stays a tree:
kinds nest region → hospital → township → village, and no edit may create a cycle.
User administration is in user_admin_service.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from common import audit
from common.auth import Principal, Role
from common.errors import Conflict, Forbidden, Invalid, NotFound
from gateway.identity import facility_repository as facilities
from gateway.identity.context import RequestContext
from gateway.identity.models import Facility, FacilityCreate, FacilityNode, FacilityUpdate

# Which kinds a facility's parent may have (None: a root).
ALLOWED_PARENTS: dict[str, frozenset[str | None]] = {
    "region": frozenset({None, "region"}),
    "hospital": frozenset({"region"}),
    "township": frozenset({"region", "hospital"}),
    "village": frozenset({"township", "hospital"}),
}
NOT_NULL = frozenset({"kind", "code", "name_zh", "name_en", "active"})


@dataclass(frozen=True)
class AdminScope:
    """The caller and the facilities they administer (None: all of them)."""

    principal: Principal
    facility_ids: frozenset[UUID] | None

    @property
    def is_platform(self) -> bool:
        return self.facility_ids is None

    def covers(self, facility_id: UUID | None) -> bool:
        return facility_id is not None and (self.facility_ids is None or facility_id in self.facility_ids)


async def admin_scope(conn: asyncpg.Connection, principal: Principal) -> AdminScope:
    if principal.has_role(Role.PLATFORM_ADMIN):
        return AdminScope(principal, None)
    if principal.has_role(Role.FACILITY_ADMIN):
        return AdminScope(principal, frozenset(await facilities.subtree_ids(conn, principal.facility_id)))
    raise Forbidden("administration needs the platform_admin or facility_admin role")


async def facility_in_scope(
    conn: asyncpg.Connection, scope: AdminScope, facility_id: UUID, what: str = "facility"
) -> Facility:
    """The facility, or 404 when it does not exist or lies outside the caller's scope."""
    facility = await facilities.get(conn, facility_id) if scope.covers(facility_id) else None
    if facility is None:
        raise NotFound(f"no such {what}: {facility_id}")
    return facility


def _check_parent_kind(kind: str, parent: Facility | None) -> None:
    parent_kind = parent.kind if parent else None
    if parent_kind not in ALLOWED_PARENTS[kind]:
        where = f"under a {parent_kind}" if parent_kind else "at the top of the tree"
        allowed = ", ".join(sorted(k or "nothing (a root)" for k in ALLOWED_PARENTS[kind]))
        raise Invalid(f"kind: a {kind} cannot sit {where}; its parent must be: {allowed}")


async def _check_reading_centre(
    conn: asyncpg.Connection, scope: AdminScope, centre_id: UUID, facility_id: UUID
) -> None:
    if centre_id == facility_id:
        raise Invalid("reading_centre_id: a facility cannot be its own reading centre")
    centre = await facility_in_scope(conn, scope, centre_id, "reading centre")
    if centre.kind != "hospital":
        raise Invalid(f"reading_centre_id: the reading centre must be a hospital, not a {centre.kind}")
    if not centre.active:
        raise Invalid("reading_centre_id: the reading centre is deactivated")


async def _check_code_free(conn: asyncpg.Connection, code: str, facility_id: UUID | None = None) -> None:
    other = await facilities.get_by_code(conn, code)
    if other is not None and other.id != facility_id:
        raise Conflict(f"a facility with code {code} already exists")


def build_tree(items: list[Facility]) -> list[FacilityNode]:
    """Nest ``items``: facilities whose parent is not among them become roots."""
    nodes = {f.id: FacilityNode(**f.model_dump()) for f in items}
    roots: list[FacilityNode] = []
    for node in nodes.values():
        parent = nodes.get(node.parent_id) if node.parent_id else None
        (parent.children if parent else roots).append(node)
    return roots


async def facility_tree(conn: asyncpg.Connection, scope: AdminScope) -> list[FacilityNode]:
    """The facilities the caller administers, nested."""
    if scope.is_platform:
        return build_tree(await facilities.list_all(conn))
    return build_tree(await facilities.list_subtree(conn, scope.principal.facility_id))


async def create_facility(
    conn: asyncpg.Connection, scope: AdminScope, data: FacilityCreate, ctx: RequestContext
) -> Facility:
    await facilities.lock_tree(conn)
    parent: Facility | None = None
    if data.parent_id is not None:
        parent = await facility_in_scope(conn, scope, data.parent_id, "parent facility")
    elif not scope.is_platform:
        raise Forbidden("only a platform admin creates a facility at the top of the tree")
    _check_parent_kind(data.kind, parent)
    new_id = uuid.uuid4()
    if data.reading_centre_id is not None:
        await _check_reading_centre(conn, scope, data.reading_centre_id, new_id)
    await _check_code_free(conn, data.code)
    created = await facilities.insert(conn, new_id, data)
    await audit.write(
        conn,
        ctx.entry(
            scope.principal,
            action="admin.facility.create",
            status=201,
            object_type="facility",
            object_id=created.id,
            detail={
                "code": created.code,
                "kind": created.kind,
                "parent_id": str(created.parent_id) if created.parent_id else None,
            },
        ),
    )
    return created


async def update_facility(
    conn: asyncpg.Connection, scope: AdminScope, facility_id: UUID, data: FacilityUpdate, ctx: RequestContext
) -> Facility:
    await facilities.lock_tree(conn)
    current = await facility_in_scope(conn, scope, facility_id)
    changes: dict[str, Any] = {k: v for k, v in data.model_dump(exclude_unset=True).items() if getattr(current, k) != v}
    for name in NOT_NULL.intersection(changes):
        if changes[name] is None:
            raise Invalid(f"{name}: must not be null")
    own_root = not scope.is_platform and facility_id == scope.principal.facility_id
    if own_root and changes.keys() & {"parent_id", "kind", "active"}:
        raise Forbidden("a facility admin cannot move, re-kind or deactivate their own facility")

    kind = changes.get("kind", current.kind)
    if "parent_id" in changes or "kind" in changes:
        parent_id = changes.get("parent_id", current.parent_id)
        parent: Facility | None = None
        if parent_id is not None:
            parent = await facility_in_scope(conn, scope, parent_id, "parent facility")
            if await facilities.in_subtree(conn, facility_id, parent_id):
                raise Invalid("parent_id: a facility cannot be moved under itself or its descendants (cycle)")
        elif not scope.is_platform:
            raise Forbidden("only a platform admin makes a facility a root")
        _check_parent_kind(kind, parent)
        for child_kind in await facilities.child_kinds(conn, facility_id):
            if kind not in ALLOWED_PARENTS[child_kind]:
                raise Invalid(f"kind: this facility has {child_kind} children, which cannot sit under a {kind}")
    if "kind" in changes and kind != "hospital" and await facilities.used_as_reading_centre(conn, facility_id):
        raise Invalid("kind: this facility is a reading centre, so it must stay a hospital")
    if changes.get("reading_centre_id") is not None:
        await _check_reading_centre(conn, scope, changes["reading_centre_id"], facility_id)
    if "code" in changes:
        await _check_code_free(conn, changes["code"], facility_id)

    updated = await facilities.update(conn, facility_id, changes)
    assert updated is not None
    if changes:
        await audit.write(
            conn,
            ctx.entry(
                scope.principal,
                action="admin.facility.update",
                object_type="facility",
                object_id=facility_id,
                detail={"fields": sorted(changes)},
            ),
        )
    return updated
