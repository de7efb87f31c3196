"""SQL of WADO-RS and the study archive: the instances of a study, series or one instance, scoped to the caller."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class StoredInstance:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    object_key: str
    size_bytes: int
    sha256: str
    number_of_frames: int | None
    pixel_data_offset: int | None
    pixel_data_length: int | None
    rows: int | None
    columns: int | None
    samples_per_pixel: int | None
    bits_allocated: int | None

    @property
    def has_pixels(self) -> bool:
        return self.number_of_frames is not None


_SCOPE = (
    " FROM imaging.instances i JOIN imaging.series se ON se.id = i.series_ref"
    " JOIN imaging.studies s ON s.id = i.study_ref"
    " WHERE s.study_instance_uid = $1 AND ($2::text IS NULL OR se.series_instance_uid = $2)"
    " AND ($3::text IS NULL OR i.sop_instance_uid = $3) AND i.facility_id = ANY($4::uuid[])"
)
_ORDER = (" ORDER BY se.series_number NULLS LAST, se.series_instance_uid, i.instance_number NULLS LAST,"
          " i.sop_instance_uid")


def _int(tag: str) -> str:
    value = f"(i.metadata -> '{tag}' -> 'Value' ->> 0)"
    return f"CASE WHEN {value} ~ '^[0-9]{{1,9}}$' THEN {value}::bigint END"


async def instances(conn: asyncpg.Connection, visible: Iterable[UUID], study_uid: str, series_uid: str | None = None,
                    sop_uid: str | None = None) -> list[StoredInstance]:
    rows = await conn.fetch(
        "SELECT s.study_instance_uid AS study_uid, se.series_instance_uid AS series_uid, i.sop_instance_uid,"
        " i.sop_class_uid, i.transfer_syntax_uid, i.object_key, i.size_bytes, i.sha256, i.number_of_frames,"
        f" i.pixel_data_offset, i.pixel_data_length, {_int('00280010')} AS rows, {_int('00280011')} AS columns,"
        f" {_int('00280002')} AS samples_per_pixel, {_int('00280100')} AS bits_allocated"
        + _SCOPE + _ORDER,
        study_uid, series_uid, sop_uid, list(visible),
    )
    return [StoredInstance(**dict(r)) for r in rows]


async def metadata(conn: asyncpg.Connection, visible: Iterable[UUID], study_uid: str, series_uid: str | None = None,
                   sop_uid: str | None = None) -> list[str]:
    """Each instance's DICOM JSON as stored (text, not parsed: the answer is these joined)."""
    rows = await conn.fetch("SELECT i.metadata::text AS m" + _SCOPE + _ORDER, study_uid, series_uid, sop_uid,
                            list(visible))
    return [r["m"] for r in rows]
