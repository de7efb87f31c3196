"""``store_instance``, the one way into the archive (STOW-RS, C-STORE and the web uploader all end there):
validation, byte-for-byte originals, index rows, counts, the event, the duplicate policy, and nothing left
behind when an instance is refused. Real PostgreSQL (row-level security on) and the real object store."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import AsyncIterator

import pytest

from common.auth import Principal
from common.config import platform_settings
from common.storage import open_store
from services.imaging.schemas import (
    FAILURE_CANNOT_UNDERSTAND,
    FAILURE_DOES_NOT_MATCH,
    FAILURE_DUPLICATE_SOP,
    FAILURE_NOT_AUTHORIZED,
    WARNING_REPLACED,
    ModalityCaller,
    Origin,
    StoreStatus,
)
from services.imaging.service import Archive, store_instance
from tests.imaging.imaging_support import make_instance, read, uid


def technician(facility: uuid.UUID | None = None, serves: frozenset[uuid.UUID] = frozenset()) -> Principal:
    return Principal(user_id=uuid.uuid4(), username="tech", roles=frozenset({"technician"}),
                     facility_id=facility or uuid.uuid4(), serves=serves)


@pytest.fixture(scope="module")
def archive(db, stack) -> Archive:
    return Archive.of(db, open_store(platform_settings()))


async def rows_for(admin_db, sop: str) -> int:
    async with admin_db.transaction() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM imaging.instances WHERE sop_instance_uid = $1", sop))


async def objects_under(archive: Archive, prefix: str) -> list[str]:
    return [info.key async for info in archive.store.list(prefix)]


async def test_stores_original_bytes_rows_counts_and_one_event(archive, admin_db) -> None:
    who = technician()
    study, series = uid(), uid()
    first = make_instance(study=study, series=series, instance_number=1, modality="MR")
    second = make_instance(study=study, series=series, instance_number=2, modality="MR", seed=1)
    o1 = await store_instance(archive, _write(first), who, Origin.STOW)
    o2 = await store_instance(archive, io.BytesIO(second), who, Origin.WEB)
    assert (o1.status, o2.status) == (StoreStatus.STORED, StoreStatus.STORED)
    assert o1.new_study and not o2.new_study and o1.facility_id == who.facility_id
    key = f"imaging/{who.facility_id}/{study}/{series}/{o1.sop_instance_uid}.dcm"
    assert await archive.store.read(key) == first
    async with admin_db.transaction() as conn:
        s = await conn.fetchrow("SELECT * FROM imaging.studies WHERE study_instance_uid = $1", study)
        assert (s["num_instances"], s["num_series"], s["modalities"]) == (2, 1, ["MR"])
        assert s["size_bytes"] == len(first) + len(second) and s["facility_id"] == who.facility_id
        i = await conn.fetchrow("SELECT * FROM imaging.instances WHERE sop_instance_uid = $1", o2.sop_instance_uid)
        assert i["sha256"] == hashlib.sha256(second).hexdigest() and i["origin"] == "web"
        assert i["received_by"] == who.user_id and i["transfer_syntax_uid"] == "1.2.840.10008.1.2.1"
        assert i["metadata"]["7FE00010"]["BulkDataURI"].endswith("/bulkdata/7FE00010")
        events = await conn.fetch("SELECT * FROM imaging.outbox WHERE subject_id = $1", str(s["id"]))
        assert [e["event_type"] for e in events] == ["imaging.study_received"]
        assert events[0]["payload"]["modality"] == "MR" and "name" not in events[0]["payload"]


async def test_modality_caller_stores_for_its_facility(archive, admin_db) -> None:
    facility = uuid.uuid4()
    o = await store_instance(archive, _write(make_instance()), ModalityCaller(facility, "CT_QH01"), Origin.DIMSE)
    assert o.status is StoreStatus.STORED and o.facility_id == facility
    async with admin_db.transaction() as conn:
        row = await conn.fetchrow("SELECT origin, source_ae_title, received_by, source_facility_id"
                                  " FROM imaging.instances WHERE sop_instance_uid = $1", o.sop_instance_uid)
    assert dict(row) == {"origin": "dimse", "source_ae_title": "CT_QH01", "received_by": None,
                         "source_facility_id": facility}


@pytest.mark.parametrize(("mangle", "reason", "words"), [
    (lambda b: b"this is a text file, not DICOM at all" * 10, FAILURE_CANNOT_UNDERSTAND, "Part-10"),
    (lambda b: b[: len(b) - 60], FAILURE_CANNOT_UNDERSTAND, "truncated"),
    (lambda b: b[:300], FAILURE_CANNOT_UNDERSTAND, "truncated"),
    (lambda b: b[:400], FAILURE_CANNOT_UNDERSTAND, "truncated"),
])
async def test_unreadable_files_fail_with_a_reason_and_leave_nothing(archive, admin_db, mangle, reason,
                                                                   words) -> None:
    who = technician()
    data = make_instance()
    o = await store_instance(archive, _write(mangle(data)), who, Origin.STOW)
    assert o.status is StoreStatus.FAILED and o.failure_reason == reason and words in o.detail
    assert await rows_for(admin_db, read(data).SOPInstanceUID) == 0
    assert await objects_under(archive, f"imaging/{who.facility_id}/") == []


@pytest.mark.parametrize(("keyword", "value", "words"), [
    ("SOPInstanceUID", None, "SOP Instance UID"),
    ("StudyInstanceUID", None, "Study Instance UID"),
    ("SeriesInstanceUID", "1.2.3.abc", "invalid Series Instance UID"),
    ("SOPClassUID", "1.02.3", "invalid SOP Class UID"),
])
async def test_missing_or_malformed_uids_fail(archive, admin_db, keyword, value, words) -> None:
    ds = read(make_instance())
    if value is None:
        delattr(ds, keyword)
    else:
        setattr(ds, keyword, value)
    buf = io.BytesIO()
    ds.save_as(buf)
    who = technician()
    o = await store_instance(archive, _write(buf.getvalue()), who, Origin.STOW)
    assert o.status is StoreStatus.FAILED and o.failure_reason == FAILURE_DOES_NOT_MATCH and words in o.detail
    assert await objects_under(archive, f"imaging/{who.facility_id}/") == []
    async with admin_db.transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM imaging.studies WHERE study_instance_uid = $1",
                                   str(ds.get("StudyInstanceUID", ""))) == 0


async def test_duplicate_policy(archive, admin_db) -> None:
    who = technician()
    study, series, sop = uid(), uid(), uid()
    original = make_instance(study=study, series=series, sop=sop)
    again = await _store_twice(archive, who, original, original)
    assert again.status is StoreStatus.DUPLICATE and again.ok and again.warning_reason is None

    corrected = make_instance(study=study, series=series, sop=sop, seed=7)
    replaced = await store_instance(archive, _write(corrected), who, Origin.STOW)
    assert replaced.status is StoreStatus.REPLACED and replaced.warning_reason == WARNING_REPLACED
    keys = await objects_under(archive, f"imaging/{who.facility_id}/{study}/")
    assert len(keys) == 1 and await archive.store.read(keys[0]) == corrected  # the old copy is gone
    async with admin_db.transaction() as conn:
        row = await conn.fetchrow("SELECT s.num_instances, s.size_bytes, i.sha256, i.replaced_at FROM"
                                  " imaging.instances i JOIN imaging.studies s ON s.id = i.study_ref"
                                  " WHERE i.sop_instance_uid = $1", sop)
    assert row["num_instances"] == 1 and row["size_bytes"] == len(corrected) and row["replaced_at"] is not None
    assert row["sha256"] == hashlib.sha256(corrected).hexdigest()

    elsewhere = make_instance(study=study, series=uid(), sop=sop)
    refused = await store_instance(archive, _write(elsewhere), who, Origin.STOW)
    assert refused.status is StoreStatus.FAILED and refused.failure_reason == FAILURE_DUPLICATE_SOP
    assert await rows_for(admin_db, sop) == 1


async def test_another_facility_cannot_add_to_a_study_it_cannot_see(archive, admin_db) -> None:
    owner, stranger = technician(), technician()
    study = uid()
    await store_instance(archive, _write(make_instance(study=study)), owner, Origin.STOW)
    o = await store_instance(archive, _write(make_instance(study=study)), stranger, Origin.STOW)
    assert o.status is StoreStatus.FAILED and o.failure_reason == FAILURE_NOT_AUTHORIZED
    assert await objects_under(archive, f"imaging/{stranger.facility_id}/") == []
    same_sop_elsewhere = make_instance(sop=o.sop_instance_uid)  # nor reuse a UID it cannot see
    assert (await store_instance(archive, _write(same_sop_elsewhere), owner, Origin.STOW)).status is StoreStatus.STORED
    assert (await store_instance(archive, _write(make_instance(sop=o.sop_instance_uid)), stranger,
                                 Origin.STOW)).failure_reason == FAILURE_DUPLICATE_SOP


async def test_reading_centre_adds_to_the_owners_study(archive, admin_db) -> None:
    township = uuid.uuid4()
    owner, reader = technician(township), technician(serves=frozenset({township}))
    study = uid()
    await store_instance(archive, _write(make_instance(study=study)), owner, Origin.STOW)
    o = await store_instance(archive, _write(make_instance(study=study, modality="SR")), reader, Origin.STOW)
    assert o.status is StoreStatus.STORED and o.facility_id == township
    async with admin_db.transaction() as conn:
        row = await conn.fetchrow("SELECT facility_id, source_facility_id FROM imaging.instances"
                                  " WHERE sop_instance_uid = $1", o.sop_instance_uid)
        modalities = await conn.fetchval("SELECT modalities FROM imaging.studies WHERE study_instance_uid = $1",
                                         study)
    assert (row["facility_id"], row["source_facility_id"]) == (township, reader.facility_id)
    assert sorted(modalities) == ["CT", "SR"]


async def test_expected_study_mismatch_fails(archive) -> None:
    o = await store_instance(archive, _write(make_instance()), technician(), Origin.STOW, expected_study_uid=uid())
    assert o.failure_reason == FAILURE_DOES_NOT_MATCH and "request URL" in o.detail


async def test_async_iterator_source_and_a_role_that_may_not_store(archive) -> None:
    data = make_instance()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 100):
            yield data[i:i + 100]

    assert (await store_instance(archive, chunks(), technician(), Origin.WEB)).status is StoreStatus.STORED
    analyst = Principal(user_id=uuid.uuid4(), username="a", roles=frozenset({"bureau_analyst"}),
                        facility_id=uuid.uuid4())
    from common.errors import Forbidden

    with pytest.raises(Forbidden):
        await store_instance(archive, _write(make_instance()), analyst, Origin.STOW)


async def _store_twice(archive: Archive, who: Principal, first: bytes, second: bytes):  # type: ignore[no-untyped-def]
    assert (await store_instance(archive, _write(first), who, Origin.STOW)).status is StoreStatus.STORED
    return await store_instance(archive, _write(second), who, Origin.STOW)


def _write(data: bytes):  # type: ignore[no-untyped-def]
    import tempfile
    from pathlib import Path

    fh = tempfile.NamedTemporaryFile(prefix="imaging-test-", suffix=".dcm", delete=False)
    fh.write(data)
    fh.close()
    return Path(fh.name)
