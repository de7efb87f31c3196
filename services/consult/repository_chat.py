"""SQL of the consult chat (caller's transaction; row-level security applies)."""

# ruff: noqa: S608  (SQL joins only column-name constants; values are bind parameters)

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from services.consult.schemas import ConsultRow

_COLUMNS = ("id, consult_id, author_id, author_name, kind, text, file_name, content_type, size_bytes, sha256,"
            " created_at")


async def insert_message(conn: asyncpg.Connection, c: ConsultRow, values: dict[str, Any]) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO consult.messages (id, consult_id, facility_id, target_facility_id, author_id, author_name,"
        " kind, text, file_key, file_name, content_type, size_bytes, sha256)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {_COLUMNS}",
        values["id"], c.id, c.facility_id, c.target_facility_id, values["author_id"], values["author_name"],
        values["kind"], values.get("text", ""), values.get("file_key"), values.get("file_name"),
        values.get("content_type"), values.get("size_bytes"), values.get("sha256"),
    )
    assert row is not None
    return row


async def history(conn: asyncpg.Connection, consult_id: UUID, *, before: UUID | None,
                  limit: int) -> list[asyncpg.Record]:
    """The ``limit`` newest messages (older than message ``before`` when given), newest first."""
    return list(await conn.fetch(
        f"SELECT {_COLUMNS} FROM consult.messages m WHERE consult_id = $1"
        " AND ($2::uuid IS NULL OR (created_at, id) < ("
        "   SELECT created_at, id FROM consult.messages WHERE id = $2 AND consult_id = $1))"
        " ORDER BY created_at DESC, id DESC LIMIT $3",
        consult_id, before, limit,
    ))


async def message_exists(conn: asyncpg.Connection, consult_id: UUID, message_id: UUID) -> bool:
    return await conn.fetchval(
        "SELECT true FROM consult.messages WHERE id = $1 AND consult_id = $2", message_id, consult_id,
    ) is not None


async def message_file(conn: asyncpg.Connection, consult_id: UUID, message_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, file_key, file_name, content_type, size_bytes, sha256 FROM consult.messages"
        " WHERE id = $1 AND consult_id = $2 AND kind = 'file'",
        message_id, consult_id,
    )
