"""SQL of the consult opinion and its addenda (the caller's transaction; row-level security applies)."""

# ruff: noqa: S608  (SQL joins only column-name constants; values are bind parameters)

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from common.signing import Addendum
from services.consult.schemas import ConsultRow

_COLUMNS = (
    "id, consult_id, facility_id, target_facility_id, author_id, author_name, findings, diagnosis,"
    " recommendations, follow_up, referral_advised, version, created_at, updated_at, signed_at, signed_by,"
    " signer_name, content_hash, acknowledged_at, acknowledged_by, acknowledged_name, pdf_key, pdf_version"
)
CONTENT = ("findings", "diagnosis", "recommendations", "follow_up", "referral_advised")


async def opinion(conn: asyncpg.Connection, consult_id: UUID, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM consult.opinions WHERE consult_id = $1" + (" FOR UPDATE" if lock else ""),
        consult_id,
    )


async def insert_opinion(conn: asyncpg.Connection, c: ConsultRow, *, opinion_id: UUID, author_id: UUID,
                         author_name: str, content: dict[str, Any]) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO consult.opinions (id, consult_id, facility_id, target_facility_id, author_id, author_name,"
        " findings, diagnosis, recommendations, follow_up, referral_advised)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {_COLUMNS}",
        opinion_id, c.id, c.facility_id, c.target_facility_id, author_id, author_name,
        content.get("findings", ""), content.get("diagnosis", ""), content.get("recommendations", ""),
        content.get("follow_up", ""), bool(content.get("referral_advised", False)),
    )
    assert row is not None
    return row


async def update_draft(conn: asyncpg.Connection, opinion_id: UUID, version: int, changes: dict[str, Any],
                       author_id: UUID, author_name: str) -> asyncpg.Record | None:
    """Apply ``changes`` to the unsigned draft still at ``version``; None otherwise."""
    cols = [c for c in CONTENT if c in changes]
    sets = [f"{c} = ${i}" for i, c in enumerate(cols, start=5)]
    return await conn.fetchrow(
        "UPDATE consult.opinions SET "
        + ", ".join([*sets, "author_id = $3", "author_name = $4", "updated_at = now()", "version = version + 1"])
        + f" WHERE id = $1 AND version = $2 AND signed_at IS NULL RETURNING {_COLUMNS}",
        opinion_id, version, author_id, author_name, *[changes[c] for c in cols],
    )


async def sign(conn: asyncpg.Connection, opinion_id: UUID, *, version: int, signed_at: datetime, signer_id: UUID,
               signer_name: str, content_hash: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE consult.opinions SET signed_at = $3, signed_by = $4, signer_name = $5, content_hash = $6,"
        f" updated_at = $3 WHERE id = $1 AND version = $2 AND signed_at IS NULL RETURNING {_COLUMNS}",
        opinion_id, version, signed_at, signer_id, signer_name, content_hash,
    )


async def acknowledge(conn: asyncpg.Connection, opinion_id: UUID, *, user_id: UUID, name: str,
                      at: datetime) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE consult.opinions SET acknowledged_at = $2, acknowledged_by = $3, acknowledged_name = $4"
        f" WHERE id = $1 AND signed_at IS NOT NULL AND acknowledged_at IS NULL RETURNING {_COLUMNS}",
        opinion_id, at, user_id, name,
    )


async def insert_addendum(conn: asyncpg.Connection, row: asyncpg.Record, *, addendum_id: UUID, author_id: UUID,
                          author_name: str, text: str, content_hash: str) -> Addendum:
    added = await conn.fetchrow(
        "INSERT INTO consult.opinion_addenda (id, opinion_id, consult_id, facility_id, target_facility_id,"
        " author_id, author_name, text, content_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " RETURNING id, author_id, author_name, text, content_hash, created_at",
        addendum_id, row["id"], row["consult_id"], row["facility_id"], row["target_facility_id"], author_id,
        author_name, text, content_hash,
    )
    return Addendum(**dict(added))


async def addenda_of(conn: asyncpg.Connection, opinion_id: UUID) -> list[Addendum]:
    rows = await conn.fetch(
        "SELECT id, author_id, author_name, text, content_hash, created_at FROM consult.opinion_addenda"
        " WHERE opinion_id = $1 ORDER BY created_at, id",
        opinion_id,
    )
    return [Addendum(**dict(r)) for r in rows]


async def set_pdf(conn: asyncpg.Connection, opinion_id: UUID, key: str, pdf_version: int) -> None:
    """Point the opinion at a rendering unless a newer one is already there."""
    await conn.execute(
        "UPDATE consult.opinions SET pdf_key = $2, pdf_version = $3 WHERE id = $1 AND pdf_version < $3",
        opinion_id, key, pdf_version,
    )
