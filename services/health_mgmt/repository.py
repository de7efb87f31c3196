"""All SQL of the health-management service. Every query is scoped to the caller's visible facilities."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import asyncpg

from services.health_mgmt.schemas import Patient

_COLUMNS = "id, facility_id, name, id_number, sex, birth_date, phone, address, created_at, updated_at, version"


def _ids(facilities: Iterable[UUID]) -> list[UUID]:
    return list(facilities)


async def insert_patient(conn: asyncpg.Connection, values: dict[str, Any]) -> Patient:
    row = await conn.fetchrow(
        f"INSERT INTO health_mgmt.patients (id, facility_id, name, id_number, sex, birth_date, phone, address,"
        f" created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_COLUMNS}",
        values["id"], values["facility_id"], values["name"], values["id_number"], values["sex"],
        values["birth_date"], values["phone"], values["address"], values["created_by"],
    )
    return Patient(**dict(row))


async def get_patient(conn: asyncpg.Connection, patient_id: UUID, visible: Iterable[UUID]) -> Patient | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM health_mgmt.patients"
        " WHERE id = $1 AND facility_id = ANY($2::uuid[]) AND deleted_at IS NULL",
        patient_id, _ids(visible),
    )
    return Patient(**dict(row)) if row else None


async def list_patients(
    conn: asyncpg.Connection, visible: Iterable[UUID], *, query: str | None, limit: int, offset: int
) -> list[Patient]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM health_mgmt.patients"
        " WHERE facility_id = ANY($1::uuid[]) AND deleted_at IS NULL"
        " AND ($2::text IS NULL OR name LIKE $2 || '%' OR id_number = upper($2) OR phone = $2)"
        " ORDER BY created_at DESC, id LIMIT $3 OFFSET $4",
        _ids(visible), query, limit, offset,
    )
    return [Patient(**dict(r)) for r in rows]


async def update_patient(
    conn: asyncpg.Connection, patient_id: UUID, facility_id: UUID, version: int, changes: dict[str, Any]
) -> Patient | None:
    """Apply ``changes`` when the row is the caller's and still at ``version``; None otherwise."""
    allowed = ("name", "sex", "birth_date", "phone", "address")
    sets = [f"{col} = ${i}" for i, col in enumerate((c for c in allowed if c in changes), start=4)]
    args = [changes[c] for c in allowed if c in changes]
    row = await conn.fetchrow(
        "UPDATE health_mgmt.patients SET "
        + ", ".join([*sets, "updated_at = now()", "version = version + 1"])
        + f" WHERE id = $1 AND facility_id = $2 AND version = $3 AND deleted_at IS NULL RETURNING {_COLUMNS}",
        patient_id, facility_id, version, *args,
    )
    return Patient(**dict(row)) if row else None


async def soft_delete_patient(conn: asyncpg.Connection, patient_id: UUID, facility_id: UUID) -> bool:
    status = await conn.execute(
        "UPDATE health_mgmt.patients SET deleted_at = now()"
        " WHERE id = $1 AND facility_id = $2 AND deleted_at IS NULL",
        patient_id, facility_id,
    )
    return bool(status.endswith(" 1"))
