"""Reading a CT as the county radiologist: worklist, priority, claim/assign, draft with version checks,
critical finding, sign (immutable, hashed, timed), addendum, the PDF and the DICOM report in the study
(QIDO/WADO), the township doctor reading it back, the events it leaves."""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from gateway.identity.seed import demo_account
from tests.conftest import auth
from tests.imaging.imaging_support import client, make_instance, read, stow, uid

READER = demo_account("specialist").display_name


@pytest.fixture(scope="module")
def study(platform, login, celery_worker) -> dict[str, Any]:
    """A two-instance CT of 城关镇 (doctor_a), marked STAT by the requester."""
    token = login("doctor_a")
    study_uid, series_uid = uid(), uid()
    parts = [make_instance(study=study_uid, series=series_uid, instance_number=n, description="胸部CT平扫")
             for n in (1, 2)]
    assert stow(platform.gateway_url, token, parts).status_code == 200
    r = httpx.put(f"{platform.gateway_url}/api/imaging/studies/{study_uid}/priority", headers=auth(token),
                  json={"priority": "stat", "clinical_question": "胸痛,排除气胸"})
    assert r.status_code == 200, r.text
    assert r.json()["priority"] == "stat" and r.json()["status"] == "new"
    return {"uid": study_uid, "series": series_uid, "sop": read(parts[0]).SOPInstanceUID}


def url(platform: Any, study_uid: str, tail: str = "") -> str:
    return f"{platform.gateway_url}/api/imaging/studies/{study_uid}{tail}"


def worklist(platform: Any, token: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{platform.gateway_url}/api/imaging/worklist", params=params, headers=auth(token))


def test_worklist_is_the_reading_centres(platform, login, study) -> None:
    spec = login("specialist")
    items = worklist(platform, spec, limit=200).json()["items"]
    mine = next(i for i in items if i["study_instance_uid"] == study["uid"])
    assert mine["priority"] == "stat" and mine["status"] == "new" and mine["modalities"] == ["CT"]
    assert mine["clinical_question"] == "胸痛,排除气胸" and mine["num_instances"] == 2
    ranks = [("stat", "urgent", "routine").index(i["priority"]) for i in items]
    assert ranks == sorted(ranks)
    found = worklist(platform, spec, modality="CT", facility_id=mine["facility_id"], priority="stat",
                     date_from="2020-01-01", date_to="2099-01-01").json()["items"]
    assert study["uid"] in {i["study_instance_uid"] for i in found}
    for other in ({"modality": "MR"}, {"facility_id": str(uuid.uuid4())}, {"date_to": "2020-01-01"},
                  {"priority": "routine"}, {"status": "signed"}):
        assert study["uid"] not in {i["study_instance_uid"] for i in worklist(platform, spec, **other).json()["items"]}
    city = worklist(platform, login("specialist_city"), limit=200)
    assert city.status_code == 200 and study["uid"] not in {i["study_instance_uid"] for i in city.json()["items"]}
    assert worklist(platform, login("doctor_a")).status_code == 403
    assert worklist(platform, spec, status="bogus").status_code == 422


def test_templates_per_modality(platform, login) -> None:
    r = httpx.get(f"{platform.gateway_url}/api/imaging/report-templates", headers=auth(login("specialist")))
    keys = {t["key"]: t for t in r.json()}
    assert set(keys) == {"ct", "mr", "xr", "us", "default"}
    assert {"DX", "CR"} <= set(keys["xr"]["modalities"]) and "检查所见" in keys["default"]["findings"]


@pytest.fixture(scope="module")
def signed(platform, login, study) -> dict[str, Any]:
    """Assigned, claimed, edited (critical), a stale edit refused, signed by the specialist."""
    token = login("specialist")
    me = httpx.get(f"{platform.gateway_url}/api/imaging/readers", headers=auth(token)).json()
    reader_id = next(r["user_id"] for r in me if r["name"] == READER)
    bad = httpx.post(url(platform, study["uid"], "/assign"), headers=auth(token), json={"user_id": str(uuid.uuid4())})
    assert bad.status_code == 422
    assigned = httpx.post(url(platform, study["uid"], "/assign"), headers=auth(token), json={"user_id": reader_id})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "assigned" and assigned.json()["assignee_name"] == READER
    claim = httpx.post(url(platform, study["uid"], "/claim"), headers=auth(token))
    assert claim.status_code == 200, claim.text
    draft = claim.json()
    assert draft["status"] == "draft" and draft["version"] == 1 and draft["template"] == "ct"
    assert draft["modality"] == "CT" and "平扫所见" in draft["findings"] and draft["reader_name"] == READER
    assert httpx.post(url(platform, study["uid"], "/claim"), headers=auth(token)).json()["id"] == draft["id"]
    edit = httpx.put(url(platform, study["uid"], "/report"), headers=auth(token), json={
        "version": 1, "findings": "右侧胸腔见气体密度影,右肺压缩约30%。", "impression": "右侧气胸。",
        "critical": True, "critical_note": "右侧气胸,建议立即处理", "ready": True})
    assert edit.status_code == 200, edit.text
    assert edit.json()["version"] == 2 and edit.json()["critical"] is True
    stale = httpx.put(url(platform, study["uid"], "/report"), headers=auth(token),
                      json={"version": 1, "impression": "x"})
    assert stale.status_code == 409
    item = worklist(platform, token, status="reported").json()["items"]
    assert study["uid"] in {i["study_instance_uid"] for i in item}
    assert httpx.post(url(platform, study["uid"], "/report/sign"), headers=auth(token),
                      json={"version": 1}).status_code == 409  # signs only what the reader saw
    assert httpx.put(url(platform, study["uid"], "/report"), headers=auth(login("specialist_city")),
                     json={"version": 2, "impression": "x"}).status_code == 404
    r = httpx.post(url(platform, study["uid"], "/report/sign"), headers=auth(token), json={"version": 2})
    assert r.status_code == 200, r.text
    return r.json()


def wait_pdf(platform: Any, token: str, study_uid: str, pages_with: str | None = None) -> bytes:
    deadline = time.monotonic() + 90
    while True:
        r = httpx.get(url(platform, study_uid, "/report/pdf"), headers=auth(token), timeout=30)
        if r.status_code == 200:
            pages = PdfReader(io.BytesIO(r.content)).pages
            if pages_with is None or pages_with in "".join(p.extract_text() for p in pages):
                return r.content
        else:
            assert r.status_code == 409 and r.json()["error"] == "not_ready", r.text
        assert time.monotonic() < deadline, "the report PDF was never rendered"
        time.sleep(0.3)


def test_sign_is_hashed_timed_and_immutable(platform, login, study, signed) -> None:
    from services.imaging.reading import verify
    from services.imaging.reading_schemas import Report

    assert signed["status"] == "signed" and signed["signer_name"] == READER and len(signed["content_hash"]) == 64
    assert verify(Report(**signed)) and signed["on_time"] is True and signed["turnaround_minutes"] >= 0
    token = login("specialist")
    assert httpx.put(url(platform, study["uid"], "/report"), headers=auth(token),
                     json={"version": signed["version"], "impression": "changed"}).status_code == 409
    assert httpx.post(url(platform, study["uid"], "/report/sign"), headers=auth(token),
                      json={"version": signed["version"]}).status_code == 409
    assert httpx.post(url(platform, study["uid"], "/claim"), headers=auth(token)).status_code == 409
    items = worklist(platform, token, status="signed", limit=200).json()["items"]
    assert next(i for i in items if i["study_instance_uid"] == study["uid"])["critical"] is True


async def test_database_refuses_to_change_a_signed_report(db, signed) -> None:
    import asyncpg

    from common.auth import system_principal

    with pytest.raises(asyncpg.IntegrityConstraintViolationError):
        async with db.transaction(system_principal()) as conn:
            await conn.execute("UPDATE imaging.reports SET impression = 'tampered' WHERE id = $1",
                               uuid.UUID(signed["id"]))
    with pytest.raises(asyncpg.IntegrityConstraintViolationError):
        async with db.transaction(system_principal()) as conn:
            await conn.execute("DELETE FROM imaging.reports WHERE id = $1", uuid.UUID(signed["id"]))


def test_pdf_and_dicom_report_in_the_study(platform, login, study, signed) -> None:
    token = login("doctor_a")
    pdf = wait_pdf(platform, token, study["uid"])
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "CT 检查报告" in text and "右侧气胸。" in text and "危急值" in text
    assert signed["content_hash"] in text.replace("\n", "") and "孙主任" in text
    dw = client(platform.gateway_url, token)
    series = dw.search_for_series(study_instance_uid=study["uid"])
    docs = [s for s in series if s["00080060"]["Value"] == ["DOC"]]
    assert len(docs) == 1 and len(series) == 2
    report = httpx.get(url(platform, study["uid"], "/report"), headers=auth(token)).json()
    assert docs[0]["0020000E"]["Value"] == [report["report_series_uid"]]
    ds = dw.retrieve_instance(study["uid"], report["report_series_uid"], report["dicom_sop_instance_uid"])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1" and ds.EncapsulatedDocument[:5] == b"%PDF-"
    assert str(ds.PatientName) == "Test^Patient"  # the study's patient module
    assert ds.StudyInstanceUID == study["uid"]


def test_addendum_after_signing(platform, login, study, signed) -> None:
    assert httpx.post(url(platform, study["uid"], "/report/addenda"), headers=auth(login("doctor_a")),
                      json={"text": "x"}).status_code == 403
    r = httpx.post(url(platform, study["uid"], "/report/addenda"), headers=auth(login("specialist")),
                   json={"text": "补充:建议一周后复查胸片。"})
    assert r.status_code == 201, r.text
    report = httpx.get(url(platform, study["uid"], "/report"), headers=auth(login("doctor_a"))).json()
    assert [a["id"] for a in report["addenda"]] == [r.json()["id"]]
    assert report["content_hash"] == signed["content_hash"]  # the signed part never changes
    wait_pdf(platform, login("doctor_a"), study["uid"], pages_with="一周后复查")
    series = client(platform.gateway_url, login("doctor_a")).search_for_instances(
        study_instance_uid=study["uid"], series_instance_uid=report["report_series_uid"])
    assert len(series) == 2  # version 1 and version 2 (with the addendum)


def test_township_reads_back_other_township_does_not(platform, login, study, signed) -> None:
    back = httpx.get(url(platform, study["uid"], "/report"), headers=auth(login("doctor_a")))
    assert back.status_code == 200 and back.json()["content_hash"] == signed["content_hash"]
    for tail in ("/report", "/report/pdf"):
        other = httpx.get(url(platform, study["uid"], tail), headers=auth(login("doctor_b")))
        assert other.status_code == 404 and other.json()["error"] == "not_found"
        assert httpx.get(url(platform, study["uid"], tail),
                         headers=auth(login("specialist_city"))).status_code == 404


async def test_events_recorded(db, study, signed) -> None:
    from common.auth import system_principal

    async with db.transaction(system_principal()) as conn:
        ref = await conn.fetchval("SELECT id FROM imaging.studies WHERE study_instance_uid = $1", study["uid"])
        rows = await conn.fetch("SELECT event_type, facility_id, payload FROM imaging.outbox WHERE subject_id = $1"
                                " AND event_type IN ('imaging.report_signed', 'imaging.critical_finding')", str(ref))
    by_type = {r["event_type"]: r for r in rows}
    assert len(rows) == 2
    done = by_type["imaging.report_signed"]["payload"]
    assert done["on_time"] is True and done["turnaround_minutes"] == signed["turnaround_minutes"]
    assert done["priority"] == "stat" and done["modality"] == "CT"
    critical = by_type["imaging.critical_finding"]
    assert str(critical["facility_id"]) == signed["facility_id"] and critical["payload"]["modality"] == "CT"


def test_draft_is_hidden_from_the_requester(platform, login) -> None:
    token = login("doctor_a")
    study_uid = uid()
    assert stow(platform.gateway_url, token, [make_instance(study=study_uid, modality="US")]).status_code == 200
    spec = login("specialist")
    draft = httpx.post(url(platform, study_uid, "/claim"), headers=auth(spec)).json()
    assert draft["template"] == "us" and "超声提示" in draft["impression"]
    assert httpx.get(url(platform, study_uid, "/report"), headers=auth(token)).status_code == 404
    assert httpx.post(url(platform, study_uid, "/report/sign"), headers=auth(spec),
                      json={"version": 1}).status_code == 422  # the template's impression is not a report
    assert httpx.post(url(platform, study_uid, "/claim"), headers=auth(token)).status_code == 403


def test_pdf_text_wraps_chinese_by_width() -> None:
    from services.imaging.reports_pdf import wrap

    lines = wrap("肺" * 50 + "\nabc", units=20)
    assert lines == ["肺" * 10] * 5 + ["abc"]
