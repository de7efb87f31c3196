"""SQL of the facility tree (``gateway.facilities``). The caller owns the transaction."""

# Queries are composed only from constants of this module and whitelisted column names; values are
# always bind parameters.
# ruff: noqa: S608

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from common.errors import Conflict
from gateway.identity.models import DirectoryFacility, Facility, FacilityCreate

COLUMNS = "id, parent_id, kind, level, code, name_zh, name_en, reading_centre_id, active, created_at, updated_at"
UPDATABLE = frozenset({"parent_id", "kind", "level", "code", "name_zh", "name_en", "reading_centre_id", "active"})
TREE_LOCK = 0x7E1E_F001  # serialises structural edits of the tree (cycle checks must not race)
MAX_DEPTH = 32

_SUBTREE = f"""
WITH RECURSIVE sub AS (
    SELECT id, 0 AS depth FROM gateway.facilities WHERE id = $1
    UNION
    SELECT f.id, sub.depth + 1 FROM gateway.facilities f JOIN sub ON f.parent_id = sub.id
    WHERE sub.depth < {MAX_DEPTH}
)
"""


def _facility(row: asyncpg.Record) -> Facility:
    return Facility.model_validate(dict(row))


async def lock_tree(conn: asyncpg.Connection) -> None:
    """Hold the tree lock until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", TREE_LOCK)


async def get(conn: asyncpg.Connection, facility_id: UUID) -> Facility | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM gateway.facilities WHERE id = $1", facility_id)
    return _facility(row) if row else None


async def get_by_code(conn: asyncpg.Connection, code: str) -> Facility | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM gateway.facilities WHERE code = $1", code)
    return _facility(row) if row else None


async def list_all(conn: asyncpg.Connection) -> list[Facility]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM gateway.facilities ORDER BY code")
    return [_facility(r) for r in rows]


async def list_subtree(conn: asyncpg.Connection, root: UUID) -> list[Facility]:
    rows = await conn.fetch(
        _SUBTREE + f"SELECT {COLUMNS} FROM gateway.facilities WHERE id IN (SELECT id FROM sub) ORDER BY code",
        root,
    )
    return [_facility(r) for r in rows]


async def subtree_ids(conn: asyncpg.Connection, root: UUID) -> list[UUID]:
    """``root`` and every facility below it."""
    return [r["id"] for r in await conn.fetch(_SUBTREE + "SELECT DISTINCT id FROM sub", root)]


async def in_subtree(conn: asyncpg.Connection, root: UUID, candidate: UUID) -> bool:
    """Whether ``candidate`` is ``root`` or lies below it."""
    return bool(await conn.fetchval(_SUBTREE + "SELECT EXISTS (SELECT 1 FROM sub WHERE id = $2)", root, candidate))


async def child_kinds(conn: asyncpg.Connection, facility_id: UUID) -> set[str]:
    rows = await conn.fetch("SELECT DISTINCT kind FROM gateway.facilities WHERE parent_id = $1", facility_id)
    return {r["kind"] for r in rows}


async def serves(conn: asyncpg.Connection, facility_id: UUID) -> list[UUID]:
    """Facilities whose reading centre is ``facility_id``, with their descendants (the token's ``serves``)."""
    rows = await conn.fetch(
        f"""
        WITH RECURSIVE served AS (
            SELECT id, 0 AS depth FROM gateway.facilities WHERE reading_centre_id = $1
            UNION
            SELECT f.id, served.depth + 1 FROM gateway.facilities f JOIN served ON f.parent_id = served.id
            WHERE served.depth < {MAX_DEPTH}
        )
        SELECT DISTINCT id FROM served WHERE id <> $1 ORDER BY id
        """,
        facility_id,
    )
    return [r["id"] for r in rows]


async def region_of(conn: asyncpg.Connection, facility_id: UUID) -> UUID | None:
    """The nearest facility of kind ``region`` at or above ``facility_id``."""
    value: UUID | None = await conn.fetchval(
        f"""
        WITH RECURSIVE up AS (
            SELECT id, parent_id, kind, 0 AS depth FROM gateway.facilities WHERE id = $1
            UNION ALL
            SELECT f.id, f.parent_id, f.kind, up.depth + 1 FROM gateway.facilities f
            JOIN up ON f.id = up.parent_id WHERE up.depth < {MAX_DEPTH}
        )
        SELECT id FROM up WHERE kind = 'region' ORDER BY depth LIMIT 1
        """,
        facility_id,
    )
    return value


async def top_of(conn: asyncpg.Connection, facility_id: UUID) -> UUID | None:
    """The root of the tree ``facility_id`` lies in (itself when it has no parent)."""
    value: UUID | None = await conn.fetchval(
        f"""
        WITH RECURSIVE up AS (
            SELECT id, parent_id, 0 AS depth FROM gateway.facilities WHERE id = $1
            UNION ALL
            SELECT f.id, f.parent_id, up.depth + 1 FROM gateway.facilities f
            JOIN up ON f.id = up.parent_id WHERE up.depth < {MAX_DEPTH}
        )
        SELECT id FROM up ORDER BY depth DESC LIMIT 1
        """,
        facility_id,
    )
    return value


DIRECTORY_COLUMNS = "id, parent_id, kind, level, code, name_zh, name_en"


async def directory(conn: asyncpg.Connection, root: UUID) -> list[DirectoryFacility]:
    """``root`` and every facility below it, active or not (old records still name closed facilities)."""
    rows = await conn.fetch(
        _SUBTREE + f"SELECT {DIRECTORY_COLUMNS} FROM gateway.facilities WHERE id IN (SELECT id FROM sub) ORDER BY code",
        root,
    )
    return [DirectoryFacility.model_validate(dict(r)) for r in rows]


async def insert(conn: asyncpg.Connection, facility_id: UUID, data: FacilityCreate) -> Facility:
    try:
        row = await conn.fetchrow(
            f"""
            INSERT INTO gateway.facilities (id, parent_id, kind, level, code, name_zh, name_en,
                reading_centre_id, active)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            RETURNING {COLUMNS}
            """,
            facility_id,
            data.parent_id,
            data.kind,
            data.level,
            data.code,
            data.name_zh,
            data.name_en,
            data.reading_centre_id,
            data.active,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a facility with code {data.code} already exists") from exc
    assert row is not None
    return _facility(row)


async def update(conn: asyncpg.Connection, facility_id: UUID, changes: dict[str, Any]) -> Facility | None:
    """Apply ``changes`` (column -> value, columns from UPDATABLE only)."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not changes:
        return await get(conn, facility_id)
    names = sorted(changes)
    assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(names))
    try:
        row = await conn.fetchrow(
            f"UPDATE gateway.facilities SET {assignments}, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
            facility_id,
            *(changes[n] for n in names),
        )
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a facility with code {changes.get('code')} already exists") from exc
    return _facility(row) if row else None


async def used_as_reading_centre(conn: asyncpg.Connection, facility_id: UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM gateway.facilities WHERE reading_centre_id = $1)", facility_id
        )
    )


async def clinicians_in_tree(conn: asyncpg.Connection, root: UUID, facility_id: UUID,
                             roles: list[str]) -> list[asyncpg.Record]:
    """Active users of ``facility_id`` having one of ``roles``, if that facility lies under ``root``
    (the consult target picker: ids, names, roles; no contact details)."""
    return list(await conn.fetch(
        _SUBTREE + "SELECT u.id AS user_id, u.display_name, u.facility_id, u.roles FROM gateway.users u"
        " WHERE u.facility_id = $2 AND u.facility_id IN (SELECT id FROM sub) AND u.active"
        " AND u.roles && $3::text[] ORDER BY u.display_name, u.id",
        root, facility_id, roles,
    ))
