"""SQL of the reader's reports and their addenda (scoped to the caller's facilities; the renderer is system)."""

# ruff: noqa: S608  (as for repository.py: SQL joins only column-name constants; values are bind parameters)

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from common.signing import Addendum
from services.ecg.schemas import Report

_COLUMNS = (
    "id, recording_id, facility_id, reader_id, reader_name, measurements, statements, conclusion, version,"
    " claimed_at, updated_at, signed_at, signed_by, signer_name, content_hash, turnaround_minutes, on_time,"
    " pdf_key, dicom_key, rendered_version"
)


def _report(row: Any, addenda: list[Addendum] | None = None) -> Report:
    data = dict(row)
    data["status"] = "signed" if data["signed_at"] else "draft"
    data["pdf_ready"] = bool(data.pop("pdf_key"))
    data["dicom_ready"] = bool(data.pop("dicom_key"))
    data.pop("rendered_version", None)
    return Report(**data, addenda=addenda or [])


async def insert_report(conn: asyncpg.Connection, values: dict[str, Any]) -> Report:
    row = await conn.fetchrow(
        "INSERT INTO ecg.reports (id, recording_id, facility_id, reader_id, reader_name, measurements, statements)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}",
        values["id"], values["recording_id"], values["facility_id"], values["reader_id"], values["reader_name"],
        values["measurements"], values["statements"],
    )
    return _report(row)


async def report_row(
    conn: asyncpg.Connection, recording_id: UUID, visible: Iterable[UUID], *, lock: bool = False
) -> Any:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM ecg.reports WHERE recording_id = $1 AND facility_id = ANY($2::uuid[])"
        + (" FOR UPDATE" if lock else ""),
        recording_id, list(visible),
    )


async def get_report(conn: asyncpg.Connection, recording_id: UUID, visible: Iterable[UUID]) -> Report | None:
    row = await report_row(conn, recording_id, visible)
    if row is None:
        return None
    return _report(row, await addenda_of(conn, row["id"]))


def as_report(row: Any, addenda: list[Addendum] | None = None) -> Report:
    return _report(row, addenda)


async def update_draft(
    conn: asyncpg.Connection, report_id: UUID, version: int, changes: dict[str, Any]
) -> Report | None:
    """Apply ``changes`` to an unsigned draft still at ``version``; None otherwise."""
    allowed = ("measurements", "statements", "conclusion")
    cols = [c for c in allowed if c in changes]
    sets = [f"{c} = ${i}" for i, c in enumerate(cols, start=3)]
    row = await conn.fetchrow(
        "UPDATE ecg.reports SET "
        + ", ".join([*sets, "updated_at = now()", "version = version + 1"])
        + f" WHERE id = $1 AND version = $2 AND signed_at IS NULL RETURNING {_COLUMNS}",
        report_id, version, *[changes[c] for c in cols],
    )
    return _report(row) if row else None


async def sign(
    conn: asyncpg.Connection,
    report_id: UUID,
    *,
    version: int,
    signed_at: datetime,
    signer_id: UUID,
    signer_name: str,
    content_hash: str,
    turnaround_minutes: float,
    on_time: bool,
    statements: list[Any] | None = None,
) -> Report | None:
    """Sign the draft at ``version``; ``statements``, when given, replace the draft's in the same update."""
    row = await conn.fetchrow(
        "UPDATE ecg.reports SET signed_at = $3, signed_by = $4, signer_name = $5, content_hash = $6,"
        " turnaround_minutes = $7, on_time = $8, updated_at = $3, statements = coalesce($9::jsonb, statements)"
        f" WHERE id = $1 AND version = $2 AND signed_at IS NULL RETURNING {_COLUMNS}",
        report_id, version, signed_at, signer_id, signer_name, content_hash, turnaround_minutes, on_time,
        statements,
    )
    return _report(row) if row else None


async def insert_addendum(conn: asyncpg.Connection, values: dict[str, Any]) -> Addendum:
    row = await conn.fetchrow(
        "INSERT INTO ecg.report_addenda (id, report_id, facility_id, author_id, author_name, text, content_hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " RETURNING id, author_id, author_name, text, content_hash, created_at",
        values["id"], values["report_id"], values["facility_id"], values["author_id"], values["author_name"],
        values["text"], values["content_hash"],
    )
    return Addendum(**dict(row))


async def addenda_of(conn: asyncpg.Connection, report_id: UUID) -> list[Addendum]:
    rows = await conn.fetch(
        "SELECT id, author_id, author_name, text, content_hash, created_at FROM ecg.report_addenda"
        " WHERE report_id = $1 ORDER BY created_at, id",
        report_id,
    )
    return [Addendum(**dict(r)) for r in rows]


async def rendered_keys(
    conn: asyncpg.Connection, recording_id: UUID, visible: Iterable[UUID]
) -> tuple[str | None, str | None, bool] | None:
    """(pdf key, dicom key, signed) of a visible report; None when there is none."""
    row = await conn.fetchrow(
        "SELECT pdf_key, dicom_key, signed_at IS NOT NULL AS signed FROM ecg.reports"
        " WHERE recording_id = $1 AND facility_id = ANY($2::uuid[])",
        recording_id, list(visible),
    )
    return (row["pdf_key"], row["dicom_key"], row["signed"]) if row else None


async def render_job(conn: asyncpg.Connection, recording_id: UUID) -> Any:
    """The signed report to render (system principal)."""
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM ecg.reports WHERE recording_id = $1 AND signed_at IS NOT NULL", recording_id
    )


async def set_rendered(
    conn: asyncpg.Connection, report_id: UUID, pdf_key: str, dicom_key: str, rendered_version: int
) -> None:
    """Point the report at a rendering unless a newer one (more addenda) is already there."""
    await conn.execute(
        "UPDATE ecg.reports SET pdf_key = $2, dicom_key = $3, rendered_version = $4"
        " WHERE id = $1 AND rendered_version < $4",
        report_id, pdf_key, dicom_key, rendered_version,
    )
