"""SQL of QIDO-RS: matching keys to indexed columns (see migrations/0002 for the indexes each one uses).

Every query starts with ``<level>.facility_id = ANY(visible)`` so that a btree with facility_id leading
serves it; row-level security is the second wall. Patterns come from services/imaging/matching.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID

import asyncpg

from services.imaging.matching import Condition


@dataclass
class Sql:
    """WHERE clauses with their numbered arguments."""

    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "true"


def _apply(sql: Sql, conditions: Iterable[Condition]) -> None:
    for c in conditions:
        sql.clauses.append(c.sql.format(*(sql.arg(v) for v in c.args)))


def _scope(sql: Sql, column: str, ref: str, visible: Iterable[UUID], granted: Sequence[UUID]) -> None:
    """The visibility clause: the caller's facilities, or one of the studies granted to it."""
    clause = f"{column} = ANY({sql.arg(list(visible))}::uuid[])"
    if granted:
        clause = f"({clause} OR {ref} = ANY({sql.arg(list(granted))}::uuid[]))"
    sql.clauses.append(clause)


async def granted_study_refs(conn: asyncpg.Connection, facility_id: UUID, user_id: UUID) -> list[UUID]:
    """Studies a live grant (consult, share) opens to this facility or user (read in a system transaction)."""
    return [r["study_ref"] for r in await conn.fetch(
        "SELECT DISTINCT g.study_ref FROM imaging.grants g WHERE g.revoked_at IS NULL"
        " AND (g.expires_at IS NULL OR g.expires_at > now())"
        " AND (g.grantee_facility_id = $1 OR g.grantee_user_id = $2) LIMIT 1000",
        facility_id, user_id)]


async def search_studies(conn: asyncpg.Connection, visible: Iterable[UUID], conditions: list[Condition],
                         limit: int, offset: int, granted: Sequence[UUID] = ()) -> list[asyncpg.Record]:
    sql = Sql()
    _scope(sql, "s.facility_id", "s.id", visible, granted)
    _apply(sql, conditions)
    return cast(list[asyncpg.Record], await conn.fetch(
        "SELECT s.study_instance_uid, s.attributes::text AS attributes, s.modalities, s.num_series,"  # noqa: S608
        f" s.num_instances FROM imaging.studies s WHERE {sql.where()}"
        " ORDER BY s.study_date DESC NULLS LAST, s.study_time DESC NULLS LAST, s.study_instance_uid"
        f" LIMIT {sql.arg(limit)} OFFSET {sql.arg(offset)}",
        *sql.args,
    ))


async def search_series(conn: asyncpg.Connection, visible: Iterable[UUID], conditions: list[Condition],
                        limit: int, offset: int, granted: Sequence[UUID] = ()) -> list[asyncpg.Record]:
    sql = Sql()
    _scope(sql, "se.facility_id", "se.study_ref", visible, granted)
    _apply(sql, conditions)
    return cast(list[asyncpg.Record], await conn.fetch(
        "SELECT s.study_instance_uid, se.series_instance_uid, se.attributes::text AS attributes,"  # noqa: S608
        " s.attributes::text AS study_attributes, s.modalities, s.num_series, s.num_instances AS study_instances,"
        " se.num_instances FROM imaging.series se JOIN imaging.studies s ON s.id = se.study_ref"
        f" WHERE {sql.where()}"
        " ORDER BY s.study_date DESC NULLS LAST, s.study_instance_uid, se.series_number NULLS LAST,"
        f" se.series_instance_uid LIMIT {sql.arg(limit)} OFFSET {sql.arg(offset)}",
        *sql.args,
    ))


async def search_instances(conn: asyncpg.Connection, visible: Iterable[UUID], conditions: list[Condition],
                           tags: list[str] | None, limit: int, offset: int,
                           granted: Sequence[UUID] = ()) -> list[asyncpg.Record]:
    """Instances with the attributes ``tags`` of their metadata (all of it when ``tags`` is None)."""
    sql = Sql()
    _scope(sql, "i.facility_id", "i.study_ref", visible, granted)
    _apply(sql, conditions)
    if tags is None:
        attributes = "i.metadata::text"
    else:
        attributes = ("(SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)"  # noqa: S608
                      f" FROM jsonb_each(i.metadata) e WHERE e.key = ANY({sql.arg(tags)}::text[]))::text")
    return cast(list[asyncpg.Record], await conn.fetch(
        "SELECT s.study_instance_uid, se.series_instance_uid, i.sop_instance_uid, i.number_of_frames,"  # noqa: S608
        f" {attributes} AS attributes FROM imaging.instances i JOIN imaging.series se ON se.id = i.series_ref"
        f" JOIN imaging.studies s ON s.id = i.study_ref WHERE {sql.where()}"
        " ORDER BY s.study_instance_uid, se.series_number NULLS LAST, se.series_instance_uid,"
        f" i.instance_number NULLS LAST, i.sop_instance_uid LIMIT {sql.arg(limit)} OFFSET {sql.arg(offset)}",
        *sql.args,
    ))


async def study_visible(conn: asyncpg.Connection, study_uid: str, visible: Iterable[UUID],
                        granted: Sequence[UUID] = ()) -> bool:
    return bool(await conn.fetchval(
        "SELECT 1 FROM imaging.studies WHERE study_instance_uid = $1"
        " AND (facility_id = ANY($2::uuid[]) OR id = ANY($3::uuid[]))",
        study_uid, list(visible), list(granted)))


async def series_visible(conn: asyncpg.Connection, study_uid: str, series_uid: str, visible: Iterable[UUID],
                         granted: Sequence[UUID] = ()) -> bool:
    return bool(await conn.fetchval(
        "SELECT 1 FROM imaging.series se JOIN imaging.studies s ON s.id = se.study_ref"
        " WHERE se.series_instance_uid = $1 AND s.study_instance_uid = $2"
        " AND (se.facility_id = ANY($3::uuid[]) OR se.study_ref = ANY($4::uuid[]))",
        series_uid, study_uid, list(visible), list(granted)))
