"""Reading as the county cardiologist: worklist order, claim, edit the draft, sign (immutable, hashed, timed),
the PDF with the tracing and the DICOM waveform, addenda; the events and audit entries it leaves."""

from __future__ import annotations

import io
import uuid
from datetime import datetime
from typing import Any

import httpx
import pydicom
import pytest
from pypdf import PdfReader

from gateway.identity.seed import demo_account
from tests.conftest import auth
from tests.ecg.ecg_service_support import (
    csv_bytes,
    sample_files,
    upload,
    ventricular_tachycardia,
    wait_analysed,
    wait_download,
)

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")
READER = demo_account("specialist").display_name  # 孙主任（县医院）: what the report shows and prints
DISCLAIMER = {"code": "machine_generated", "zh": "机器自动分析结果,仅供参考,待医师审核确认。",
              "en": "Machine-generated interpretation - awaiting physician confirmation.", "source": "machine"}


@pytest.fixture(scope="module")
def cases(platform, login, celery_worker) -> dict[str, dict[str, Any]]:
    """Routine (SCP), urgent (Philips) and a critical VT from doctor_a, analysed by the worker."""
    token = login("doctor_a")
    made = {
        "routine": upload(platform.gateway_url, token, sample_files("scp"), priority="routine"),
        "urgent": upload(platform.gateway_url, token, sample_files("philips_xml"), priority="urgent"),
        "critical": upload(platform.gateway_url, token, [("vt.csv", csv_bytes(ventricular_tachycardia()))]),
    }
    out = {}
    for key, r in made.items():
        assert r.status_code == 201, r.text
        out[key] = wait_analysed(platform.gateway_url, token, r.json()["id"])
    return out


def url(platform: Any, rid: str, tail: str = "") -> str:
    return f"{platform.gateway_url}/api/ecg/recordings/{rid}{tail}"


def test_worklist_puts_critical_first_then_priority_then_age(platform, login, cases) -> None:
    items = httpx.get(f"{platform.gateway_url}/api/ecg/worklist", params={"limit": 200},
                      headers=auth(login("specialist"))).json()["items"]
    order = [i["id"] for i in items]
    ids = {k: v["id"] for k, v in cases.items()}
    rank = {"stat": 0, "urgent": 1, "routine": 2}
    keys = [(not i["critical"], rank[i["priority"]], datetime.fromisoformat(i["received_at"])) for i in items]
    assert keys == sorted(keys), "critical first, then stat/urgent/routine, then the oldest"
    assert order.index(ids["critical"]) < order.index(ids["routine"])
    assert order.index(ids["urgent"]) < order.index(ids["routine"])
    flagged = next(i for i in items if i["id"] == ids["critical"])
    assert flagged["critical"] is True and flagged["finding"] == "vf_vt"
    city = httpx.get(f"{platform.gateway_url}/api/ecg/worklist", headers=auth(login("specialist_city"))).json()
    assert not set(ids.values()) & {i["id"] for i in city["items"]}
    assert httpx.get(f"{platform.gateway_url}/api/ecg/worklist", headers=auth(login("doctor_a"))).status_code == 403


@pytest.fixture(scope="module")
def signed(platform, login, cases) -> dict[str, Any]:
    """The routine SCP claimed, edited and signed by the specialist."""
    token, rid = login("specialist"), cases["routine"]["id"]
    claim = httpx.post(url(platform, rid, "/claim"), headers=auth(token))
    assert claim.status_code == 200, claim.text
    draft = claim.json()
    assert draft["status"] == "draft" and draft["version"] == 1 and draft["reader_name"] == READER
    assert draft["measurements"].get("hr_bpm") and any(s["source"] == "machine" for s in draft["statements"])
    # the machine's axes and Fridericia QTc come along, under the report's keys
    for key in ("qrs_axis_deg", "t_axis_deg", "qtcf_ms", "qtc_ms"):
        assert isinstance(draft["measurements"].get(key), int | float), (key, draft["measurements"])
    # the machine's disclaimer labels its reading: it is not the doctor's statement
    assert "machine_generated" not in {s.get("code") for s in draft["statements"]}
    assert httpx.post(url(platform, rid, "/claim"), headers=auth(token)).json()["id"] == draft["id"]
    measurements = {**draft["measurements"], "pr_ms": 158}
    statements = [DISCLAIMER, *draft["statements"], {"zh": "窦性心律, 正常心电图", "en": "Sinus rhythm, normal ECG",
                                                     "source": "reader"}]
    edit = httpx.put(url(platform, rid, "/report"), headers=auth(token),
                     json={"version": 1, "measurements": measurements, "statements": statements,
                           "conclusion": "正常心电图。Normal ECG."})
    assert edit.status_code == 200, edit.text
    assert edit.json()["version"] == 2 and edit.json()["measurements"]["pr_ms"] == 158
    kept = [(st.get("code"), st["en"]) for st in edit.json()["statements"]]
    assert kept == [(st.get("code"), st["en"]) for st in statements[1:]], "a disclaimer sent back is dropped"
    stale = httpx.put(url(platform, rid, "/report"), headers=auth(token), json={"version": 1, "conclusion": "x"})
    assert stale.status_code == 409
    r = httpx.post(url(platform, rid, "/report/sign"), headers=auth(token), json={"version": 2})
    assert r.status_code == 200, r.text
    return r.json()


def test_sign_stores_hash_signer_time_and_turnaround(platform, login, cases, signed) -> None:
    from services.ecg.reading import verify
    from services.ecg.schemas import Report

    assert signed["status"] == "signed" and signed["signer_name"] == READER and signed["signed_at"]
    assert signed["reader_name"] == READER
    assert "machine_generated" not in {s.get("code") for s in signed["statements"]}
    assert len(signed["content_hash"]) == 64 and verify(Report(**signed))
    assert signed["on_time"] is True and signed["turnaround_minutes"] >= 0
    rec = httpx.get(url(platform, cases["routine"]["id"]), headers=auth(login("doctor_a"))).json()
    assert rec["status"] == "signed" and rec["signed_at"] and rec["report_id"] == signed["id"]
    # the township that sent it reads the report back
    back = httpx.get(url(platform, cases["routine"]["id"], "/report"), headers=auth(login("doctor_a")))
    assert back.status_code == 200 and back.json()["content_hash"] == signed["content_hash"]


def test_signed_report_is_immutable(platform, login, cases, signed) -> None:
    token, rid = login("specialist"), cases["routine"]["id"]
    assert httpx.put(url(platform, rid, "/report"), headers=auth(token),
                     json={"version": signed["version"], "conclusion": "changed"}).status_code == 409
    assert httpx.post(url(platform, rid, "/report/sign"), headers=auth(token),
                      json={"version": signed["version"]}).status_code == 409
    assert httpx.post(url(platform, rid, "/claim"), headers=auth(token)).status_code == 409


async def test_database_refuses_to_change_a_signed_report(db, signed) -> None:
    import asyncpg

    from common.auth import system_principal

    with pytest.raises(asyncpg.IntegrityConstraintViolationError):
        async with db.transaction(system_principal()) as conn:
            await conn.execute("UPDATE ecg.reports SET conclusion = 'tampered' WHERE id = $1",
                               uuid.UUID(signed["id"]))


async def test_signing_leaves_an_event_and_an_audit_entry(db, admin_db, signed) -> None:
    from common.auth import system_principal

    async with db.transaction(system_principal()) as conn:
        events = await conn.fetch("SELECT payload FROM ecg.outbox WHERE event_type = 'ecg.report_signed'"
                                  " AND subject_id = $1", signed["recording_id"])
    assert len(events) == 1
    payload = events[0]["payload"]
    assert payload["on_time"] is True and payload["turnaround_minutes"] == signed["turnaround_minutes"]
    async with admin_db.transaction() as conn:
        audits = await conn.fetch("SELECT actor_name, detail FROM audit.events WHERE action = 'ecg.report.sign'"
                                  " AND object_id = $1", signed["id"])
    assert [a["actor_name"] for a in audits] == ["specialist"]  # the audit trail keeps the username


def test_pdf_has_the_title_and_the_tracing(platform, login, signed) -> None:
    pdf = wait_download(platform.gateway_url, login("doctor_a"), signed["recording_id"], "pdf")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 2  # summary, 12-lead tracing
    first = reader.pages[0].extract_text()
    assert "心电图诊断报告" in first and "ECG Report" in first
    assert "正常心电图" in first and signed["content_hash"] in first.replace("\n", "")
    assert "孙主任" in first and "待医师审核确认" not in first
    assert "25 mm/s" in reader.pages[1].extract_text()


def test_dicom_waveform_reads_back(platform, login, signed) -> None:
    raw = wait_download(platform.gateway_url, login("specialist"), signed["recording_id"], "dicom")
    ds = pydicom.dcmread(io.BytesIO(raw))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.9.1.1" and ds.Modality == "ECG"
    waveform = ds.waveform_array(0)
    assert waveform.shape == (5000, 12)
    texts = [item.UnformattedTextValue for item in ds.WaveformAnnotationSequence]
    assert "正常心电图。Normal ECG." in texts and any(signed["content_hash"] in t for t in texts)


def test_addendum_after_signing(platform, login, cases, signed) -> None:
    rid = cases["routine"]["id"]
    assert httpx.post(url(platform, rid, "/report/addenda"), headers=auth(login("doctor_a")),
                      json={"text": "x"}).status_code == 403
    r = httpx.post(url(platform, rid, "/report/addenda"), headers=auth(login("specialist")),
                   json={"text": "补充:建议一周后复查。Follow-up in one week."})
    assert r.status_code == 201, r.text
    report = httpx.get(url(platform, rid, "/report"), headers=auth(login("specialist"))).json()
    assert [a["id"] for a in report["addenda"]] == [r.json()["id"]]
    assert r.json()["author_name"] == READER
    assert report["content_hash"] == signed["content_hash"]  # the signed part never changes
    import time

    deadline = time.monotonic() + 60
    while True:  # the PDF is rendered again with the addendum page
        pdf = wait_download(platform.gateway_url, login("specialist"), rid, "pdf")
        pages = PdfReader(io.BytesIO(pdf)).pages
        if len(pages) == 3:
            assert "一周后复查" in pages[2].extract_text()
            break
        assert time.monotonic() < deadline, "the addendum never reached the PDF"
        time.sleep(0.3)


def test_reading_rules(platform, login, cases) -> None:
    rid = cases["urgent"]["id"]
    assert httpx.post(url(platform, rid, "/claim"), headers=auth(login("doctor_a"))).status_code == 403
    assert httpx.post(url(platform, rid, "/claim"), headers=auth(login("specialist_city"))).status_code == 404
    assert httpx.put(url(platform, rid, "/report"), headers=auth(login("specialist")),
                     json={"version": 1}).status_code == 409  # not claimed yet
    assert httpx.post(url(platform, rid, "/report/addenda"), headers=auth(login("specialist")),
                      json={"text": "x"}).status_code == 409  # nothing signed
    assert httpx.get(url(platform, rid, "/report/pdf"), headers=auth(login("specialist"))).status_code == 404
    claimed = httpx.post(url(platform, rid, "/claim"), headers=auth(login("specialist")))
    assert claimed.status_code == 200
    empty = httpx.put(url(platform, rid, "/report"), headers=auth(login("specialist")),
                      json={"version": 1, "statements": [], "conclusion": ""})
    assert empty.status_code == 200
    refused = httpx.post(url(platform, rid, "/report/sign"), headers=auth(login("specialist")), json={"version": 2})
    assert refused.status_code == 422  # nothing to sign
    bad = httpx.put(url(platform, rid, "/report"), headers=auth(login("specialist")),
                    json={"version": 2, "unknown": 1})
    assert bad.status_code == 422


async def test_a_disclaimer_left_in_an_older_draft_is_never_signed(platform, login, db, cases) -> None:
    """A draft opened before drafts were kept free of the disclaimer: signing drops it (what the editor shows)."""
    import asyncio

    from common.auth import system_principal
    from services.ecg.reading import verify
    from services.ecg.schemas import Report

    token, rid = login("specialist"), cases["critical"]["id"]
    claimed = await asyncio.to_thread(httpx.post, url(platform, rid, "/claim"), headers=auth(token))
    assert claimed.status_code == 200, claimed.text
    mine = {"code": None, "zh": "室性心动过速", "en": "Ventricular tachycardia", "source": "reader"}
    async with db.transaction(system_principal()) as conn:
        await conn.execute("UPDATE ecg.reports SET statements = $2 WHERE id = $1", uuid.UUID(claimed.json()["id"]),
                           [DISCLAIMER, mine])
    r = await asyncio.to_thread(httpx.post, url(platform, rid, "/report/sign"), headers=auth(token),
                                json={"version": claimed.json()["version"]})
    assert r.status_code == 200, r.text
    assert r.json()["statements"] == [mine] and verify(Report(**r.json()))


def test_missing_cjk_font_is_a_clear_error(platform) -> None:
    from services.ecg.report_pdf import FontMissing, find_cjk_font

    with pytest.raises(FontMissing, match="fonts-noto-cjk"):
        find_cjk_font("/nonexistent/font.ttc")
    ready = httpx.get(f"{platform.service_url('ecg')}/readyz").json()
    assert ready["checks"]["cjk_font"] == "ok"
