"""The consult opinion: draft by the consultant, signed and then immutable (also to a direct SQL UPDATE),
addenda, the PDF both sides read, the requester's acknowledgement, 404 for everyone else."""

from __future__ import annotations

import io
import uuid

import asyncpg
import httpx
import pytest
from pypdf import PdfReader

from tests.conftest import auth
from tests.consult.flow_support import accepted_consult, api

DIAGNOSIS = "急性下壁心肌梗死(STEMI)"


@pytest.fixture(scope="module")
def signed(platform, login) -> dict[str, object]:
    """A consult whose opinion the consultant wrote (two drafts) and signed."""
    gw = platform.gateway_url
    doctor, spec = login("doctor_a"), login("specialist")
    consult = accepted_consult(gw, doctor, spec)
    cid = consult["id"]
    r = httpx.put(api(gw, f"/consults/{cid}/opinion"), headers=auth(spec), json={
        "findings": "心电图 II、III、aVF 导联 ST 段抬高。", "diagnosis": "急性冠脉综合征?", "referral_advised": False})
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["status"] == "draft" and first["version"] == 1
    state = httpx.get(api(gw, f"/consults/{cid}"), headers=auth(doctor)).json()["consult"]["status"]
    assert state == "opinion_written"
    r = httpx.put(api(gw, f"/consults/{cid}/opinion"), headers=auth(spec), json={
        "version": 1, "diagnosis": DIAGNOSIS, "recommendations": "立即转上级医院行 PCI。",
        "follow_up": "出院后一周心内科门诊随访。", "referral_advised": True})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    stale = httpx.put(api(gw, f"/consults/{cid}/opinion"), headers=auth(spec), json={"version": 1, "diagnosis": "x"})
    assert stale.status_code == 409
    r = httpx.post(api(gw, f"/consults/{cid}/opinion/sign"), headers=auth(spec), json={"version": 2})
    assert r.status_code == 200, r.text
    return {"consult_id": cid, "opinion": r.json()}


def test_only_the_consultant_writes(platform, login) -> None:
    gw = platform.gateway_url
    consult = accepted_consult(gw, login("doctor_a"), login("specialist"))
    r = httpx.put(api(gw, f"/consults/{consult['id']}/opinion"), headers=auth(login("doctor_a")),
                  json={"diagnosis": "自己写"})
    assert r.status_code == 403, r.text
    r = httpx.post(api(gw, f"/consults/{consult['id']}/opinion/sign"), headers=auth(login("specialist")),
                   json={"version": 1})
    assert r.status_code == 409  # nothing written yet


def test_signed_opinion_is_sealed(platform, login, signed) -> None:
    from services.consult.opinion import Opinion, verify

    gw, cid = platform.gateway_url, signed["consult_id"]
    opinion = Opinion.model_validate(signed["opinion"])
    assert opinion.status == "signed" and opinion.diagnosis == DIAGNOSIS and opinion.referral_advised
    assert opinion.signer_name and opinion.content_hash and verify(opinion)
    detail = httpx.get(api(gw, f"/consults/{cid}"), headers=auth(login("doctor_a"))).json()
    assert detail["consult"]["status"] == "signed"
    spec = login("specialist")
    again = httpx.put(api(gw, f"/consults/{cid}/opinion"), headers=auth(spec), json={"version": 2, "diagnosis": "改"})
    assert again.status_code == 409
    resign = httpx.post(api(gw, f"/consults/{cid}/opinion/sign"), headers=auth(spec), json={"version": 2})
    assert resign.status_code == 409


async def test_direct_sql_update_is_refused(admin_db, signed) -> None:
    """Even the schema owner cannot change a signed opinion's content or delete it: the trigger refuses."""
    cid = uuid.UUID(str(signed["consult_id"]))
    async with admin_db.pool.acquire() as conn:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="immutable"):
            await conn.execute("UPDATE consult.opinions SET diagnosis = 'tampered' WHERE consult_id = $1", cid)
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="immutable"):
            await conn.execute("UPDATE consult.opinions SET signed_at = now() WHERE consult_id = $1", cid)
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="deleted"):
            await conn.execute("DELETE FROM consult.opinions WHERE consult_id = $1", cid)
        diagnosis = await conn.fetchval("SELECT diagnosis FROM consult.opinions WHERE consult_id = $1", cid)
    assert diagnosis == DIAGNOSIS


def test_addenda_pdf_and_acknowledgement(platform, login, signed) -> None:
    gw, cid = platform.gateway_url, signed["consult_id"]
    doctor, spec = login("doctor_a"), login("specialist")
    r = httpx.post(api(gw, f"/consults/{cid}/opinion/addenda"), headers=auth(spec),
                   json={"text": "补充:肌钙蛋白 I 升高,支持诊断。"})
    assert r.status_code == 201, r.text
    by_requester = httpx.post(api(gw, f"/consults/{cid}/opinion/addenda"), headers=auth(doctor), json={"text": "x"})
    assert by_requester.status_code == 403

    # the requester reads the opinion (with its addendum) and the PDF
    seen = httpx.get(api(gw, f"/consults/{cid}/opinion"), headers=auth(doctor)).json()
    assert seen["diagnosis"] == DIAGNOSIS
    assert [a["text"] for a in seen["addenda"]] == ["补充:肌钙蛋白 I 升高,支持诊断。"]
    assert seen["content_hash"] == signed["opinion"]["content_hash"]  # the addendum changed nothing signed
    for token in (doctor, spec):
        pdf = httpx.get(api(gw, f"/consults/{cid}/opinion.pdf"), headers=auth(token), timeout=60)
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["content-type"] == "application/pdf"
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
        assert DIAGNOSIS in text and "肌钙蛋白" in text
        assert seen["content_hash"] in text and "测试患者" not in text

    # only the requesting side acknowledges, once
    assert httpx.post(api(gw, f"/consults/{cid}/opinion/acknowledge"), headers=auth(spec)).status_code == 403
    r = httpx.post(api(gw, f"/consults/{cid}/opinion/acknowledge"), headers=auth(doctor))
    assert r.status_code == 200, r.text
    assert r.json()["acknowledged_name"] and r.json()["acknowledged_at"]
    assert httpx.post(api(gw, f"/consults/{cid}/opinion/acknowledge"), headers=auth(doctor)).status_code == 409
    pdf = httpx.get(api(gw, f"/consults/{cid}/opinion.pdf"), headers=auth(doctor), timeout=60)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Acknowledged by" in text  # a fresh rendering once acknowledged
    closed = httpx.post(api(gw, f"/consults/{cid}/close"), headers=auth(doctor), json={})
    assert closed.status_code == 200, closed.text


def test_a_non_participant_gets_404(platform, login, signed) -> None:
    cid = signed["consult_id"]
    other = auth(login("doctor_b"))
    for base in (platform.gateway_url, platform.service_url("consult")):
        for method, path, body in (
            ("GET", f"/consults/{cid}/opinion", None),
            ("GET", f"/consults/{cid}/opinion.pdf", None),
            ("PUT", f"/consults/{cid}/opinion", {"diagnosis": "x"}),
            ("POST", f"/consults/{cid}/opinion/sign", {"version": 1}),
            ("POST", f"/consults/{cid}/opinion/addenda", {"text": "x"}),
            ("POST", f"/consults/{cid}/opinion/acknowledge", None),
        ):
            r = httpx.request(method, api(base, path), headers=other, json=body)
            assert r.status_code == 404, f"{method} {path}: {r.status_code} {r.text}"
            missing = httpx.request(method, api(base, path.replace(str(cid), str(uuid.uuid4()))), headers=other,
                                    json=body)
            assert missing.json() == r.json()
