"""Cold tiering: an old study moves to the cold tier by the beat task (per-facility days honoured, copy verified,
hot copy removed, idempotent) and WADO-RS, WADO-URI and the study ZIP still return the very same bytes; the
cold retrieve is recorded as imaging.cold_retrieve."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import pytest

from common.config import PlatformSettings
from common.storage import open_store
from tests.conftest import auth
from tests.imaging.imaging_support import make_instance, quiet_pydicom, read, stow, uid

quiet_pydicom()


@pytest.fixture(scope="module")
def old_study(platform, login) -> dict[str, Any]:
    study, series = uid(), uid()
    files = [make_instance(study=study, series=series, instance_number=n, seed=n) for n in (1, 2)]
    r = stow(platform.gateway_url, login("tech_a"), files)
    assert r.status_code == 200, r.text
    return {"study": study, "series": series, "files": {str(read(f).SOPInstanceUID): f for f in files}}


def _move(celery_client) -> dict[str, Any]:
    result: dict[str, Any] = celery_client.send_task("imaging.move_cold_studies").get(timeout=120)
    return result


async def test_old_study_moves_cold_and_retrieves_byte_identical(platform, login, celery_client, admin_db,
                                                                 old_study) -> None:
    study = old_study["study"]
    async with admin_db.transaction() as conn:
        facility = await conn.fetchval("SELECT facility_id FROM imaging.studies WHERE study_instance_uid = $1",
                                       study)
        await conn.execute("UPDATE imaging.studies SET received_at = now() - interval '40 days'"
                           " WHERE study_instance_uid = $1", study)
        # this facility keeps studies hot for 60 days: not yet due
        await conn.execute("INSERT INTO imaging.tiering_policies (facility_id, cold_after_days) VALUES ($1, 60)"
                           " ON CONFLICT (facility_id) DO UPDATE SET cold_after_days = 60", facility)
    _move(celery_client)
    async with admin_db.transaction() as conn:
        assert await conn.fetchval("SELECT storage_tier FROM imaging.studies WHERE study_instance_uid = $1",
                                   study) == "hot"
        hot_keys = [r["object_key"] for r in await conn.fetch(
            "SELECT i.object_key FROM imaging.instances i JOIN imaging.studies s ON s.id = i.study_ref"
            " WHERE s.study_instance_uid = $1", study)]
        await conn.execute("UPDATE imaging.tiering_policies SET cold_after_days = 30 WHERE facility_id = $1",
                           facility)
    first = _move(celery_client)
    assert first["instances"] >= 2 and first["failed"] == 0
    async with admin_db.transaction() as conn:
        assert await conn.fetchval("SELECT storage_tier FROM imaging.studies WHERE study_instance_uid = $1",
                                   study) == "cold"
        keys = [r["object_key"] for r in await conn.fetch(
            "SELECT i.object_key FROM imaging.instances i JOIN imaging.studies s ON s.id = i.study_ref"
            " WHERE s.study_instance_uid = $1", study)]
    assert keys and all(k.startswith("cold/") for k in keys)
    hot = open_store(PlatformSettings())
    for key in hot_keys:
        assert not await hot.exists(key), "the hot copy is removed after the switch"
    assert _move(celery_client)["instances"] == 0  # idempotent

    token = login("doctor_a")
    async with httpx.AsyncClient(timeout=60, headers=auth(token)) as c:
        for sop, original in old_study["files"].items():
            r = await c.get(f"{platform.gateway_url}/wado", params={
                "requestType": "WADO", "studyUID": study, "seriesUID": old_study["series"], "objectUID": sop,
                "contentType": "application/dicom"})
            assert r.status_code == 200 and r.content == original
            wado = await c.get(f"{platform.gateway_url}/dicom-web/studies/{study}/series/{old_study['series']}"
                               f"/instances/{sop}", headers={"Accept": 'multipart/related; type="application/dicom";'
                                                                    ' transfer-syntax=*'})
            assert wado.status_code == 200 and original in wado.content
        z = await c.get(f"{platform.gateway_url}/api/imaging/studies/{study}/archive")
        assert z.status_code == 200
        with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
            contents = {name.rsplit("/", 1)[-1][:-4]: zf.read(name) for name in zf.namelist()}
        assert contents == old_study["files"]
    async with admin_db.transaction() as conn:
        events = await conn.fetchval("SELECT count(*) FROM imaging.outbox WHERE event_type = 'imaging.cold_retrieve'"
                                     " AND subject_id = $1", study)
    assert events >= 1


async def test_rewarm_brings_the_study_back_hot(platform, login, celery_client, admin_db, old_study) -> None:
    """Runs after the move above: the re-warm task (queued by a cold retrieve when IMAGING_REWARM_ON_RETRIEVE)
    copies the study back, and it still retrieves byte for byte."""
    study = old_study["study"]
    result = celery_client.send_task("imaging.rewarm_study", args=[study]).get(timeout=120)
    assert result["moved"] >= 2
    async with admin_db.transaction() as conn:
        assert await conn.fetchval("SELECT storage_tier FROM imaging.studies WHERE study_instance_uid = $1",
                                   study) == "hot"
        keys = [r["object_key"] for r in await conn.fetch(
            "SELECT i.object_key FROM imaging.instances i JOIN imaging.studies s ON s.id = i.study_ref"
            " WHERE s.study_instance_uid = $1", study)]
    assert keys and not any(k.startswith("cold/") for k in keys)
    # just re-warmed: not due again although received long ago
    assert celery_client.send_task("imaging.move_cold_studies").get(timeout=120)["instances"] == 0
    async with httpx.AsyncClient(timeout=60, headers=auth(login("doctor_a"))) as c:
        for sop, original in old_study["files"].items():
            r = await c.get(f"{platform.gateway_url}/wado", params={
                "requestType": "WADO", "studyUID": study, "seriesUID": old_study["series"], "objectUID": sop,
                "contentType": "application/dicom"})
            assert r.status_code == 200 and r.content == original


def test_facility_admin_sets_days_until_cold(platform, login) -> None:
    base = f"{platform.gateway_url}/api/imaging/tiering"
    admin = auth(login("hospital_admin"))
    r = httpx.put(base, json={"cold_after_days": 365}, headers=admin)
    assert r.status_code == 200, r.text
    assert httpx.get(base, headers=admin).json() == {**r.json(), "default": False}
    assert httpx.put(base, json={"cold_after_days": 0}, headers=admin).status_code == 422
    # a doctor may read the policy of their facility but not set it
    doctor = auth(login("doctor_b"))
    assert httpx.put(base, json={"cold_after_days": 5}, headers=doctor).status_code == 403
    assert httpx.get(base, headers=doctor).json()["default"] is True
