"""Share links and grants: a link opens one study without a token, only that study, until it expires or is
revoked; each access is audited by share id (never the token). A grant makes a study visible to a specialist
of another hospital, and withdrawing it hides the study again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from common.config import platform_settings
from tests.conftest import auth
from tests.imaging.imaging_support import make_instance, quiet_pydicom, read, stow, uid

quiet_pydicom()


def _study(platform: Any, token: str) -> dict[str, Any]:
    study, series = uid(), uid()
    files = [make_instance(study=study, series=series, instance_number=n, seed=n, patient_name="Share^Me")
             for n in (1, 2)]
    r = stow(platform.gateway_url, token, files)
    assert r.status_code == 200, r.text
    return {"study": study, "series": series, "sop": str(read(files[0]).SOPInstanceUID), "bytes": files[0]}


@pytest.fixture(scope="module")
def two_studies(platform, login) -> tuple[dict[str, Any], dict[str, Any]]:
    token = login("tech_a")
    return _study(platform, token), _study(platform, token)


def _body(body: dict[str, Any]) -> dict[str, Any]:
    body.setdefault("expires_at", (datetime.now(UTC) + timedelta(days=2)).isoformat())
    return body


def _share_sync(base: str, token: str, study: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{base}/api/imaging/studies/{study}/shares", json=_body(body), headers=auth(token))


async def _share(c: httpx.AsyncClient, base: str, token: str, study: str, **body: Any) -> httpx.Response:
    return await c.post(f"{base}/api/imaging/studies/{study}/shares", json=_body(body), headers=auth(token))


async def test_share_link_opens_one_study_without_a_login(platform, login, two_studies, admin_db) -> None:
    a, other = two_studies
    c = httpx.AsyncClient(timeout=60)
    r = await _share(c, platform.gateway_url, login("doctor_a"), a["study"], note="for the patient")
    assert r.status_code == 201, r.text
    share = r.json()
    token, share_id = share["token"], share["id"]
    assert share["status"] == "active" and len(token) >= 40
    base = f"{platform.gateway_url}/api/imaging/shared"
    q = {"token": token}
    study = await c.get(f"{base}/study", params=q)  # no bearer token
    assert study.status_code == 200, study.text
    assert study.json()["study_uid"] == a["study"] and study.json()["num_instances"] == 2
    inst = await c.get(f"{base}/series/{a['series']}/instances/{a['sop']}", params=q)
    assert inst.status_code == 200 and inst.content == a["bytes"]
    assert (await c.get(f"{base}/metadata", params=q)).json()[0]["0020000D"]["Value"] == [a["study"]]
    rendered = await c.get(f"{base}/series/{a['series']}/instances/{a['sop']}/rendered", params=q)
    assert rendered.status_code == 200 and rendered.content[:2] == b"\xff\xd8"
    thumb = await c.get(f"{base}/thumbnail", headers={"X-Share-Token": token})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    # only that study: another study's instance through the same link is not there
    wrong = await c.get(f"{base}/series/{other['series']}/instances/{other['sop']}", params=q)
    assert wrong.status_code == 404 and wrong.json()["error"] == "not_found"
    # and the link is no bearer token for the rest of the API
    meta = await c.get(f"{platform.gateway_url}/dicom-web/studies/{a['study']}/metadata", params=q)
    assert meta.status_code == 401
    # an unknown token: 404 with the error shape
    unknown = await c.get(f"{base}/study", params={"token": "x" * 43})
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    assert (await c.get(f"{base}/study")).status_code == 404
    # audited by share id, never the token
    async with admin_db.transaction() as conn:
        rows = await conn.fetch("SELECT action, object_id, outcome, detail::text AS detail FROM audit.events"
                                " WHERE object_id = $1 AND action = 'imaging.share.access'", share_id)
        leaked = await conn.fetchval("SELECT count(*) FROM audit.events WHERE object_id LIKE '%' || $1 || '%'"
                                     " OR detail::text LIKE '%' || $1 || '%' OR action LIKE '%' || $1 || '%'",
                                     token)
    assert len(rows) >= 5 and all(r["outcome"] == "success" for r in rows)
    assert leaked == 0
    # listed for the owner (without the token)
    listed = (await c.get(f"{platform.gateway_url}/api/imaging/studies/{a['study']}/shares",
                          headers=auth(login("doctor_a")))).json()["items"]
    await c.aclose()
    assert share_id in {s["id"] for s in listed} and all("token" not in s for s in listed)


async def test_revoked_and_expired_links_are_refused(platform, login, two_studies, admin_db) -> None:
    a, _ = two_studies
    owner = login("doctor_a")
    base = f"{platform.gateway_url}/api/imaging/shared"
    c = httpx.AsyncClient(timeout=60)
    share = (await _share(c, platform.gateway_url, owner, a["study"])).json()
    ok = await c.get(f"{base}/study", params={"token": share["token"]})
    assert ok.status_code == 200
    r = await c.delete(f"{platform.gateway_url}/api/imaging/studies/{a['study']}/shares/{share['id']}",
                     headers=auth(owner))
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    gone = await c.get(f"{base}/study", params={"token": share["token"]})
    assert gone.status_code == 410 and gone.json()["error"] == "gone"
    # the answer depends on the token, not only the URL: no cache may keep it for another holder
    for answer in (ok, gone):
        assert answer.headers["cache-control"] == "no-store"
        assert "x-share-token" in answer.headers["vary"].lower()

    expiring = (await _share(c, platform.gateway_url, owner, a["study"])).json()
    async with admin_db.transaction() as conn:
        await conn.execute("UPDATE imaging.shares SET expires_at = now() - interval '1 minute' WHERE id = $1",
                           uuid.UUID(expiring["id"]))
    expired = await c.get(f"{base}/series/{a['series']}/instances/{a['sop']}", params={"token": expiring["token"]})
    assert expired.status_code == 410 and expired.json()["error"] == "gone"
    async with admin_db.transaction() as conn:
        denied = await conn.fetchval("SELECT count(*) FROM audit.events WHERE action = 'imaging.share.access'"
                                     " AND outcome = 'denied' AND object_id = ANY($1::text[])",
                                     [share["id"], expiring["id"]])
    assert denied == 2
    await c.aclose()


def test_who_may_share(platform, login, two_studies) -> None:
    a, _ = two_studies
    # the reading centre may share a study of the township it serves; another township and the city may not
    assert _share_sync(platform.gateway_url, login("specialist"), a["study"]).status_code == 201
    for user in ("doctor_b", "specialist_city"):
        r = _share_sync(platform.gateway_url, login(user), a["study"])
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    # expiry is required and bounded
    r = httpx.post(f"{platform.gateway_url}/api/imaging/studies/{a['study']}/shares", json={},
                   headers=auth(login("doctor_a")))
    assert r.status_code == 422
    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    assert _share_sync(platform.gateway_url, login("doctor_a"), a["study"], expires_at=far).status_code == 422


def test_grant_makes_a_study_visible_and_withdrawing_hides_it(platform, login, two_studies) -> None:
    a, _ = two_studies
    city = login("specialist_city")
    svc = platform.service_url("imaging")
    meta = f"{platform.gateway_url}/dicom-web/studies/{a['study']}/metadata"
    assert httpx.get(meta, headers=auth(city)).status_code == 404
    key = {"X-Internal-Key": platform_settings().internal_api_key}
    facility = jwt.decode(city, options={"verify_signature": False})["fac"]
    body = {"study_uid": a["study"], "grantee_facility_id": facility, "reason": "consult", "reference": "c-1"}
    # without the internal key, or with a wrong one: refused
    assert httpx.post(f"{svc}/api/imaging/grants", json=body).status_code == 401
    assert httpx.post(f"{svc}/api/imaging/grants", json=body, headers={"X-Internal-Key": "nope"}).status_code == 401
    r = httpx.post(f"{svc}/api/imaging/grants", json=body, headers=key)
    assert r.status_code == 201, r.text
    grant = r.json()
    seen = httpx.get(meta, headers=auth(city))
    assert seen.status_code == 200 and len(seen.json()) == 2
    inst = httpx.get(f"{platform.gateway_url}/dicom-web/studies/{a['study']}/series/{a['series']}/instances/"
                     f"{a['sop']}", headers={**auth(city), "Accept": "multipart/related; type=\"application/dicom\""})
    assert inst.status_code == 200 and a["bytes"] in inst.content
    # the grant is for this study only
    _, other = two_studies
    assert httpx.get(f"{platform.gateway_url}/dicom-web/studies/{other['study']}/metadata",
                     headers=auth(city)).status_code == 404
    assert httpx.delete(f"{svc}/api/imaging/grants", params={"id": grant["id"]}, headers=key).status_code == 204
    assert httpx.get(meta, headers=auth(city)).status_code == 404
    assert httpx.delete(f"{svc}/api/imaging/grants", params={"id": str(uuid.uuid4())}, headers=key).status_code == 404
