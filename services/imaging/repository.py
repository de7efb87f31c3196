"""SQL of the archive index: storing instances (QIDO in repository_query.py, retrieval in repository_retrieve.py).

Transactions belong to the caller. Reads are scoped by the caller's visible facilities in the WHERE clause;
row-level security (migrations/0002) is the second wall.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from services.imaging.index import ParsedInstance
from services.imaging.index_json import json_text


@dataclass(frozen=True)
class ExistingInstance:
    id: UUID
    facility_id: UUID
    study_uid: str
    series_uid: str
    sha256: str
    size_bytes: int
    object_key: str
    sop_class_uid: str


@dataclass(frozen=True)
class StudyRef:
    id: UUID
    facility_id: UUID
    created: bool


def _ids(facilities: Iterable[UUID]) -> list[UUID]:
    return list(facilities)


async def study_owner(conn: asyncpg.Connection, study_uid: str, visible: Iterable[UUID]) -> UUID | None:
    """The owner facility of a visible study, or None (absent or not visible)."""
    value: UUID | None = await conn.fetchval(
        "SELECT facility_id FROM imaging.studies WHERE study_instance_uid = $1 AND facility_id = ANY($2::uuid[])",
        study_uid, _ids(visible),
    )
    return value


async def find_instance(conn: asyncpg.Connection, sop_uid: str, visible: Iterable[UUID], *,
                        lock: bool = False) -> ExistingInstance | None:
    row = await conn.fetchrow(
        "SELECT i.id, i.facility_id, st.study_instance_uid AS study_uid, se.series_instance_uid AS series_uid,"
        " i.sha256, i.size_bytes,"
        " i.object_key, i.sop_class_uid FROM imaging.instances i"
        " JOIN imaging.series se ON se.id = i.series_ref JOIN imaging.studies st ON st.id = i.study_ref"
        " WHERE i.sop_instance_uid = $1 AND i.facility_id = ANY($2::uuid[])" + (" FOR UPDATE OF i" if lock else ""),
        sop_uid, _ids(visible),
    )
    return ExistingInstance(**dict(row)) if row else None


async def find_instances(conn: asyncpg.Connection, sop_uids: list[str], visible: Iterable[UUID], *,
                         lock: bool = False) -> dict[str, ExistingInstance]:
    """``find_instance`` for many SOP Instance UIDs at once (one statement), by UID."""
    rows = await conn.fetch(
        "SELECT i.sop_instance_uid AS sop, i.id, i.facility_id, st.study_instance_uid AS study_uid,"
        " se.series_instance_uid AS series_uid, i.sha256, i.size_bytes, i.object_key, i.sop_class_uid"
        " FROM imaging.instances i"
        " JOIN imaging.series se ON se.id = i.series_ref JOIN imaging.studies st ON st.id = i.study_ref"
        " WHERE i.sop_instance_uid = ANY($1::text[]) AND i.facility_id = ANY($2::uuid[])"
        + (" FOR UPDATE OF i" if lock else ""),
        sop_uids, _ids(visible),
    )
    out = {}
    for row in rows:
        values = dict(row)
        sop = values.pop("sop")
        out[sop] = ExistingInstance(**values)
    return out


async def study_owners(conn: asyncpg.Connection, study_uids: list[str], visible: Iterable[UUID]) -> dict[str, UUID]:
    """``study_owner`` for many Study Instance UIDs at once: the visible ones, by UID."""
    rows = await conn.fetch(
        "SELECT study_instance_uid, facility_id FROM imaging.studies WHERE study_instance_uid = ANY($1::text[])"
        " AND facility_id = ANY($2::uuid[])",
        study_uids, _ids(visible),
    )
    return {r["study_instance_uid"]: r["facility_id"] for r in rows}


async def upsert_patient(conn: asyncpg.Connection, facility_id: UUID, p: ParsedInstance) -> UUID:
    patient_attrs = {k: v for k, v in p.study_attributes.items() if k.startswith("0010")}
    row_id: UUID = await conn.fetchval(
        "INSERT INTO imaging.patients (id, facility_id, patient_key, patient_id, issuer, patient_name, birth_date,"
        " sex, attributes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb)"
        " ON CONFLICT (facility_id, patient_key) DO UPDATE SET patient_name = EXCLUDED.patient_name,"
        " birth_date = coalesce(EXCLUDED.birth_date, imaging.patients.birth_date),"
        " sex = EXCLUDED.sex, attributes = EXCLUDED.attributes, updated_at = now() RETURNING id",
        uuid.uuid4(), facility_id, p.patient_key, p.patient_id, p.issuer, p.patient_name.raw, p.birth_date,
        p.sex, json_text(patient_attrs),
    )
    return row_id


async def lock_study(conn: asyncpg.Connection, study_uid: str, visible: Iterable[UUID]) -> StudyRef | None:
    row = await conn.fetchrow(
        "SELECT id, facility_id FROM imaging.studies WHERE study_instance_uid = $1 AND facility_id = ANY($2::uuid[])"
        " FOR UPDATE",
        study_uid, _ids(visible),
    )
    return StudyRef(row["id"], row["facility_id"], False) if row else None


async def insert_study(conn: asyncpg.Connection, facility_id: UUID, patient_ref: UUID,
                       p: ParsedInstance) -> UUID | None:
    """Insert the study row; None when its UID already exists (maybe in a facility the caller cannot see)."""
    n = p.patient_name
    value: UUID | None = await conn.fetchval(
        "INSERT INTO imaging.studies (id, facility_id, patient_ref, study_instance_uid, patient_id, patient_name,"
        " pn_alpha, pn_ideographic, pn_phonetic, pn_search, patient_birth_date, patient_sex, study_date,"
        " study_time, accession_number, study_id, study_description, description_search, referring_search,"
        " attributes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,"
        " $19, $20::text::jsonb) ON CONFLICT (study_instance_uid) DO NOTHING RETURNING id",
        uuid.uuid4(), facility_id, patient_ref, p.study_uid, p.patient_id, n.raw, n.alpha, n.ideographic,
        n.phonetic, n.search, p.birth_date, p.sex, p.study_date, p.study_time, p.accession_number, p.study_id,
        p.study_description, p.study_description.lower(), p.referring_search, json_text(p.study_attributes),
    )
    return value


async def series_row(conn: asyncpg.Connection, series_uid: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, study_ref, facility_id FROM imaging.series WHERE series_instance_uid = $1 FOR UPDATE",
        series_uid,
    )


async def insert_series(conn: asyncpg.Connection, facility_id: UUID, study_ref: UUID,
                        p: ParsedInstance) -> UUID | None:
    value: UUID | None = await conn.fetchval(
        "INSERT INTO imaging.series (id, facility_id, study_ref, series_instance_uid, modality, series_number,"
        " series_description, performed_start_date, attributes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
        " $9::text::jsonb) ON CONFLICT (series_instance_uid) DO NOTHING RETURNING id",
        uuid.uuid4(), facility_id, study_ref, p.series_uid, p.modality, p.series_number, p.series_description,
        p.performed_start_date, json_text(p.series_attributes),
    )
    return value


INSERT_INSTANCE = (
    "INSERT INTO imaging.instances (id, facility_id, source_facility_id, study_ref, series_ref,"
    " sop_instance_uid, sop_class_uid, instance_number, transfer_syntax_uid, number_of_frames,"
    " pixel_data_offset, pixel_data_length, object_key, size_bytes, sha256, metadata, origin,"
    " source_ae_title, received_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
    " $15, $16::text::jsonb, $17, $18, $19)"
)


def _instance_args(instance_id: UUID, values: dict[str, Any], p: ParsedInstance) -> tuple[Any, ...]:
    return (instance_id, values["facility_id"], values["source_facility_id"], values["study_ref"],
            values["series_ref"], p.sop_instance_uid, p.sop_class_uid, p.instance_number, p.transfer_syntax_uid,
            p.number_of_frames, p.pixel_data_offset, p.pixel_data_length, values["object_key"],
            values["size_bytes"], values["sha256"], p.metadata_json(), values["origin"], values["source_ae_title"],
            values["received_by"])


async def insert_instance(conn: asyncpg.Connection, values: dict[str, Any], p: ParsedInstance) -> UUID:
    instance_id = uuid.uuid4()
    await conn.execute(INSERT_INSTANCE, *_instance_args(instance_id, values, p))
    return instance_id


async def insert_instances(conn: asyncpg.Connection, rows: list[tuple[dict[str, Any], ParsedInstance]]) -> list[UUID]:
    """Many instance rows in one pipelined round trip (asyncpg executemany); their ids, in order."""
    ids = [uuid.uuid4() for _ in rows]
    await conn.executemany(INSERT_INSTANCE, [_instance_args(i, v, p) for i, (v, p) in zip(ids, rows, strict=True)])
    return ids


async def replace_instance(conn: asyncpg.Connection, instance_id: UUID, values: dict[str, Any],
                           p: ParsedInstance) -> None:
    await conn.execute(
        "UPDATE imaging.instances SET source_facility_id = $2, sop_class_uid = $3, instance_number = $4,"
        " transfer_syntax_uid = $5, number_of_frames = $6, pixel_data_offset = $7, pixel_data_length = $8,"
        " object_key = $9, size_bytes = $10, sha256 = $11, metadata = $12::text::jsonb, origin = $13,"
        " source_ae_title = $14, received_by = $15, received_at = now(), replaced_at = now() WHERE id = $1",
        instance_id, values["source_facility_id"], p.sop_class_uid, p.instance_number, p.transfer_syntax_uid,
        p.number_of_frames, p.pixel_data_offset, p.pixel_data_length, values["object_key"], values["size_bytes"],
        values["sha256"], p.metadata_json(), values["origin"], values["source_ae_title"], values["received_by"],
    )


async def count_instance(conn: asyncpg.Connection, study_ref: UUID, series_ref: UUID, *, new_series: bool,
                         modality: str, instances: int, size_delta: int) -> None:
    """Keep the study's and series' counts (locks: study row first, then series, in every transaction)."""
    await conn.execute(
        "UPDATE imaging.studies SET num_instances = num_instances + $2, size_bytes = size_bytes + $3,"
        " num_series = num_series + $4, updated_at = now(),"
        " modalities = CASE WHEN $5 = '' OR $5 = ANY(modalities) THEN modalities ELSE modalities || $5 END"
        " WHERE id = $1",
        study_ref, instances, size_delta, 1 if new_series else 0, modality,
    )
    await conn.execute(
        "UPDATE imaging.series SET num_instances = num_instances + $2, size_bytes = size_bytes + $3,"
        " updated_at = now() WHERE id = $1",
        series_ref, instances, size_delta,
    )


async def study_uid_taken(conn: asyncpg.Connection, study_uid: str) -> bool:
    """Whether the UID is archived by any facility (migrations/0002: imaging.study_uid_taken)."""
    return bool(await conn.fetchval("SELECT imaging.study_uid_taken($1)", study_uid))
