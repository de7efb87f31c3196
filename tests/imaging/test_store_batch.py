"""``store_batch.store_instances`` (what STOW-RS runs per batch of parts) gives the outcomes, rows, counts and
events of storing the instances one by one, and ``stow_batches`` reads parts into memory or spools the large
ones. Real PostgreSQL (row-level security on) and the real object store."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common.auth import Principal
from common.config import platform_settings
from common.storage import open_store
from services.imaging.dicomweb_stow_parts import stow_batches
from services.imaging.schemas import (
    FAILURE_CANNOT_UNDERSTAND,
    FAILURE_DOES_NOT_MATCH,
    FAILURE_DUPLICATE_SOP,
    FAILURE_NOT_AUTHORIZED,
    WARNING_REPLACED,
    Origin,
    StoreStatus,
)
from services.imaging.service import Archive, store_instance
from services.imaging.store_batch import Item, store_instances
from tests.imaging.imaging_support import make_instance, multipart, uid


def technician(facility: uuid.UUID | None = None, serves: frozenset[uuid.UUID] = frozenset()) -> Principal:
    return Principal(user_id=uuid.uuid4(), username="tech", roles=frozenset({"technician"}),
                     facility_id=facility or uuid.uuid4(), serves=serves)


@pytest.fixture(scope="module")
def archive(db, stack) -> Archive:
    return Archive.of(db, open_store(platform_settings()))


def item(data: bytes) -> Item:
    return Item(len(data), data)


async def test_a_batch_stores_like_one_by_one(archive, admin_db, tmp_path: Path) -> None:
    who = technician()
    study, series, other_series = uid(), uid(), uid()
    a = make_instance(study=study, series=series, instance_number=1)
    b = make_instance(study=study, series=series, instance_number=2, seed=1)
    c = make_instance(study=study, series=other_series, modality="SR", seed=2)
    b_fixed = make_instance(study=study, series=series, sop=_sop(b), instance_number=2, seed=9)
    spooled = tmp_path / "d.dcm"
    d = make_instance(study=uid(), seed=3)
    spooled.write_bytes(d)
    outcomes = await store_instances(archive, [
        item(a), item(b), item(c), item(a), item(b_fixed), item(b"not dicom" * 50),
        Item(len(d), path=spooled, sha256=hashlib.sha256(d).hexdigest()),
    ], who, Origin.STOW)
    assert [o.status for o in outcomes] == [StoreStatus.STORED, StoreStatus.STORED, StoreStatus.STORED,
                                            StoreStatus.DUPLICATE, StoreStatus.REPLACED, StoreStatus.FAILED,
                                            StoreStatus.STORED]
    assert outcomes[4].warning_reason == WARNING_REPLACED and outcomes[5].failure_reason == FAILURE_CANNOT_UNDERSTAND
    assert [o.new_study for o in outcomes] == [True, False, False, False, False, False, True]
    assert await archive.store.read(f"imaging/{who.facility_id}/{study}/{series}/{_sop(a)}.dcm") == a
    async with admin_db.transaction() as conn:
        s = await conn.fetchrow("SELECT * FROM imaging.studies WHERE study_instance_uid = $1", study)
        assert (s["num_instances"], s["num_series"], sorted(s["modalities"])) == (3, 2, ["CT", "SR"])
        assert s["size_bytes"] == len(a) + len(b_fixed) + len(c)
        se = await conn.fetchrow("SELECT num_instances, size_bytes FROM imaging.series"
                                 " WHERE series_instance_uid = $1", series)
        assert (se["num_instances"], se["size_bytes"]) == (2, len(a) + len(b_fixed))
        events = await conn.fetch("SELECT payload FROM imaging.outbox WHERE subject_id = $1", str(s["id"]))
        assert len(events) == 1 and events[0]["payload"]["modality"] == "CT"
        row = await conn.fetchrow("SELECT sha256, origin, received_by FROM imaging.instances"
                                  " WHERE sop_instance_uid = $1", _sop(d))
        assert dict(row) == {"sha256": hashlib.sha256(d).hexdigest(), "origin": "stow", "received_by": who.user_id}


async def test_refusals_inside_a_batch_fall_back_to_one_by_one(archive, admin_db) -> None:
    owner, stranger = technician(), technician()
    taken = uid()
    await store_instance(archive, io.BytesIO(make_instance(study=taken)), owner, Origin.STOW)
    mine = make_instance()
    theirs = make_instance(study=taken)
    sop_elsewhere = make_instance(sop=_sop(mine))
    outcomes = await store_instances(archive, [item(mine), item(theirs), item(make_instance(study=uid()))],
                                     stranger, Origin.STOW)
    assert [o.status for o in outcomes] == [StoreStatus.STORED, StoreStatus.FAILED, StoreStatus.STORED]
    assert outcomes[1].failure_reason == FAILURE_NOT_AUTHORIZED
    assert [k async for k in _keys(archive, f"imaging/{stranger.facility_id}/{taken}/")] == []
    again = await store_instances(archive, [item(sop_elsewhere)], stranger, Origin.STOW)
    assert again[0].failure_reason == FAILURE_DUPLICATE_SOP
    wrong = await store_instances(archive, [item(make_instance())], stranger, Origin.STOW, expected_study_uid=uid())
    assert wrong[0].failure_reason == FAILURE_DOES_NOT_MATCH


async def test_parts_are_held_in_memory_or_spooled(tmp_path: Path) -> None:
    small, large = make_instance(), make_instance(rows=64, columns=64)
    body, ctype = multipart([small, large, small])
    boundary = ctype.split("boundary=")[1].strip('"').encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    batches = [b async for b in stow_batches(chunks(), boundary, tmp_path, max_body=10**9, max_part=10**8,
                                             memory_part=len(small) + 10, batch_parts=2, batch_bytes=10**9)]
    assert [len(b) for b in batches] == [2, 1]
    first, second, third = [p for b in batches for p in b]
    assert first.data == small and first.path is None and third.data == small
    assert second.data is None and second.path is not None and second.path.read_bytes() == large
    assert second.sha256 == hashlib.sha256(large).hexdigest() and second.size == len(large)
    assert all(p.complete for p in (first, second, third))


def _sop(data: bytes) -> str:
    from tests.imaging.imaging_support import read

    return str(read(data).SOPInstanceUID)


async def _keys(archive: Archive, prefix: str) -> AsyncIterator[str]:
    async for info in archive.store.list(prefix):
        yield info.key


async def test_stow_prerenders_the_first_view_when_configured(archive) -> None:
    """IMAGING_PRERENDER_FIRST_FRAME: after the STOW-RS answer the first frame of each new image is rendered
    with the default options (what the viewer asks for first) into the render cache; off, nothing is."""
    from services.imaging import service_render
    from services.imaging.dicomweb_stow import stow_body
    from services.imaging.render import RenderOptions, render_file

    who = technician()
    on = Archive(archive.db, archive.store, archive.settings.model_copy(update={"prerender_first_frame": True}))
    for target, expect in ((archive, False), (on, True)):
        data = make_instance(rows=64, columns=64, seed=11)
        body, ctype = multipart([data, make_instance(modality="SR")])

        async def chunks(body: bytes = body) -> AsyncIterator[bytes]:
            yield body

        status, _ = await stow_body(target, who, chunks(), ctype, None, "http://x/dicom-web")
        assert status == 200
        await service_render.settle_cache_writes()
        key = service_render.key_of(_sop(data), hashlib.sha256(data).hexdigest(), 1, RenderOptions())
        assert await archive.store.exists(key) is expect
        if expect:
            assert await archive.store.read(key) == render_file(data, 1, RenderOptions())
