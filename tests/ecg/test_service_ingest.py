"""Uploading ECGs through the gateway as the township doctor: every sample format, WFDB pairs and zips,
the original kept byte-for-byte, the analysis by the real worker, and bad input refused with nothing left."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import auth
from tests.ecg.ecg_service_support import (
    SAMPLES,
    csv_bytes,
    objects_under,
    sample_files,
    sinus,
    upload,
    wait_analysed,
)

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")


@pytest.fixture(scope="module")
def uploaded(platform, login, celery_worker) -> dict[str, dict]:
    """One upload per sample format (doctor_a, through the gateway), made once for the module."""
    token = login("doctor_a")
    out = {}
    for fmt in SAMPLES:
        r = upload(platform.gateway_url, token, sample_files(fmt), priority="routine")
        assert r.status_code == 201, f"{fmt}: {r.status_code} {r.text}"
        out[fmt] = r.json()
    return out


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_every_sample_format_is_stored_and_analysed(platform, login, uploaded, fmt) -> None:
    files, source_format, leads, fs = SAMPLES[fmt]
    rec = uploaded[fmt]
    assert rec["source_format"] == source_format
    assert len(rec["lead_names"]) == leads and rec["fs"] == fs
    assert rec["priority"] == "routine" and rec["status"] in ("new", "analysing", "ready")
    assert [f["name"] for f in rec["original_files"]] == [Path(f).name for f in files]
    done = wait_analysed(platform.gateway_url, login("doctor_a"), rec["id"])
    assert done["status"] == "ready", done.get("analysis_error")
    analysis = done["analysis"]
    assert analysis["machine_generated"] is True and analysis["statements"]
    assert {"intervals", "rhythm", "quality", "beats"} <= set(analysis)
    assert done["analysed_at"] is not None


def test_device_measurements_are_kept(uploaded) -> None:
    """The DICOM sample carries the device's own measurements (README: PR 161, QRS 75, QT 368 ms)."""
    m = uploaded["dicom"]["device_measurements"]
    assert m.get("pr_ms") == 161 and m.get("qrs_ms") == 75 and m.get("qt_ms") == 368


def test_long_record_gets_a_holter_summary(platform, login, uploaded) -> None:
    done = wait_analysed(platform.gateway_url, login("doctor_a"), uploaded["ishne"]["id"])
    assert done["duration_s"] > 60
    assert done["analysis"]["summary"]["beats_total"] > 0


def test_original_comes_back_byte_for_byte(platform, login, uploaded) -> None:
    token = login("doctor_a")
    rid = uploaded["scp"]["id"]
    r = httpx.get(f"{platform.gateway_url}/api/ecg/recordings/{rid}/original", headers=auth(token))
    assert r.status_code == 200
    assert r.content == sample_files("scp")[0][1]
    assert r.headers["x-content-sha256"] == hashlib.sha256(r.content).hexdigest()
    # a WFDB pair: one file by name, or both as a zip
    wid = uploaded["wfdb"]["id"]
    one = httpx.get(f"{platform.gateway_url}/api/ecg/recordings/{wid}/original", params={"file": "1.dat"},
                    headers=auth(token))
    assert one.status_code == 200 and one.content == dict(sample_files("wfdb"))["1.dat"]
    both = httpx.get(f"{platform.gateway_url}/api/ecg/recordings/{wid}/original", headers=auth(token))
    assert both.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(both.content)) as zf:
        assert {n: zf.read(n) for n in zf.namelist()} == dict(sample_files("wfdb"))
    missing = httpx.get(f"{platform.gateway_url}/api/ecg/recordings/{wid}/original", params={"file": "x.dat"},
                        headers=auth(token))
    assert missing.status_code == 404


def test_zip_of_a_wfdb_record(platform, login) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in sample_files("wfdb"):
            zf.writestr(f"ludb/{name}", data)
    r = upload(platform.gateway_url, login("doctor_a"), [("record.zip", buf.getvalue())])
    assert r.status_code == 201, r.text
    assert r.json()["source_format"] == "wfdb" and len(r.json()["lead_names"]) == 12
    assert r.json()["original_files"][0]["name"] == "record.zip"


def test_signal_for_the_viewer(platform, login, uploaded) -> None:
    from services.ecg.formats import read
    from tests.ecg.ecg_service_support import data_dir

    token = login("doctor_a")
    rid = uploaded["scp"]["id"]
    url = f"{platform.gateway_url}/api/ecg/recordings/{rid}/signal"
    whole = httpx.get(url, headers=auth(token))
    assert whole.status_code == 200
    body = whole.json()
    assert body["fs"] == 500 and body["samples"] == 5000 and len(body["data"]) == 12 and body["units"] == "mV"
    source = read(data_dir() / "formats/scp/Example.scp")
    lead_ii = body["data"][body["leads"].index("II")]
    assert max(abs(a - float(b)) for a, b in zip(lead_ii, source.lead("II"), strict=True)) < 0.002
    window = httpx.get(url, params={"start": 2, "duration": 4, "fs": 250, "leads": "II,V1"}, headers=auth(token))
    assert window.json()["leads"] == ["II", "V1"] and window.json()["samples"] == 1000
    assert window.json()["start_s"] == 2 and window.json()["fs"] == 250
    binary = httpx.get(url, params={"format": "binary", "fs": 100}, headers=auth(token))
    assert binary.headers["content-type"] == "application/octet-stream"
    assert binary.headers["x-ecg-samples"] == "1000" and len(binary.content) == 12 * 1000 * 4
    bad = httpx.get(url, params={"leads": "II,V9"}, headers=auth(token))
    assert bad.status_code == 422 and "V9" in bad.json()["detail"]


def test_signal_of_a_short_record_is_cheap(platform, login, uploaded) -> None:
    """A 10 s 12-lead at 500 Hz straight from the service: a few ms of work (bound loose for shared CPUs)."""
    import time

    token = login("doctor_a")
    url = f"{platform.service_url('ecg')}/api/ecg/recordings/{uploaded['scp']['id']}/signal"
    with httpx.Client(headers=auth(token)) as client:
        client.get(url)
        started = time.perf_counter()
        for _ in range(10):
            assert client.get(url).status_code == 200
        assert (time.perf_counter() - started) / 10 < 0.25


def test_lists_are_scoped_and_filtered(platform, login, uploaded) -> None:
    gw = platform.gateway_url
    mine = {uploaded[f]["id"] for f in uploaded}
    page = httpx.get(f"{gw}/api/ecg/recordings", params={"limit": 200}, headers=auth(login("doctor_a"))).json()
    assert mine <= {r["id"] for r in page["items"]}
    other = httpx.get(f"{gw}/api/ecg/recordings", params={"limit": 200}, headers=auth(login("doctor_b"))).json()
    assert not mine & {r["id"] for r in other["items"]}
    reader = httpx.get(f"{gw}/api/ecg/recordings", params={"limit": 200}, headers=auth(login("specialist"))).json()
    assert mine <= {r["id"] for r in reader["items"]}
    city = httpx.get(f"{gw}/api/ecg/recordings", params={"limit": 200}, headers=auth(login("specialist_city")))
    assert not mine & {r["id"] for r in city.json()["items"]}
    facility = uploaded["scp"]["facility_id"]
    stat = httpx.get(f"{gw}/api/ecg/recordings", params={"priority": "stat", "facility_id": facility},
                     headers=auth(login("doctor_a"))).json()
    assert not mine & {r["id"] for r in stat["items"]}
    since = httpx.get(f"{gw}/api/ecg/recordings", params={"from": uploaded["scp"]["received_at"], "limit": 200},
                      headers=auth(login("doctor_a"))).json()
    assert uploaded["scp"]["id"] in {r["id"] for r in since["items"]}
    assert httpx.get(f"{gw}/api/ecg/recordings", params={"status": "bogus"},
                     headers=auth(login("doctor_a"))).status_code == 422
    assert httpx.get(f"{gw}/api/ecg/recordings", headers=auth(login("analyst"))).status_code == 403


def _corrupt_cases() -> dict[str, list[tuple[str, bytes]]]:
    scp = sample_files("scp")[0][1]
    hea, dat = sample_files("wfdb")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("junk.bin", b"\x00\x01" * 500)
    return {
        "truncated scp": [("trunc.scp", scp[:3000])],
        "wrong header": [("fake.xml", b"<?xml version='1.0'?><html><body>no ecg</body></html>")],
        "unit-less csv": [("nounit.csv", b"# fs=500\nI,II\n1,2\n3,4\n")],
        "wfdb without its signal": [hea],
        "truncated wfdb signal": [hea, (dat[0], dat[1][:5000])],
        "zip of junk": [("junk.zip", zipped.getvalue())],
        "empty file": [("empty.scp", b"")],
        "two unrelated files": [("a.scp", scp), ("b.scp", scp)],
    }


@pytest.mark.parametrize("case", sorted(_corrupt_cases()))
async def test_unreadable_upload_is_422_and_leaves_nothing(platform, login, stack, admin_db, case) -> None:
    token = login("doctor_a")
    objects_root = Path(stack.env["OBJECT_STORE_ROOT"])

    async def count() -> int:
        async with admin_db.transaction() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM ecg.recordings"))

    rows_before = await count()
    objects_before = objects_under(objects_root, "ecg/")
    r = upload(platform.gateway_url, token, _corrupt_cases()[case])
    assert r.status_code == 422, f"{case}: {r.status_code} {r.text}"
    assert r.json()["detail"], "the answer says why"
    assert await count() == rows_before
    assert objects_under(objects_root, "ecg/") == objects_before


def test_who_may_upload_and_what_is_checked(platform, login) -> None:
    gw = platform.gateway_url
    csv = [("sinus.csv", csv_bytes(sinus(seconds=4)))]
    assert upload(gw, login("specialist"), csv).status_code == 403
    assert upload(gw, login("analyst"), csv).status_code == 403
    assert httpx.post(f"{gw}/api/ecg/recordings", files={"file": ("a.csv", b"x")}).status_code == 401
    assert upload(gw, login("tech_a"), csv).status_code == 201
    assert upload(gw, login("doctor_a"), csv, priority="whenever").status_code == 422
    r = httpx.post(f"{gw}/api/ecg/recordings", json={"file": "x"}, headers=auth(login("doctor_a")))
    assert r.status_code == 415
    no_file = httpx.post(f"{gw}/api/ecg/recordings", files={"note": (None, "x")}, headers=auth(login("doctor_a")))
    assert no_file.status_code == 422 and "file" in no_file.json()["detail"]


def test_patient_must_be_in_the_callers_register(platform, login) -> None:
    from tests.tenancy.test_isolation import valid_id_number

    gw = platform.gateway_url
    csv = [("sinus.csv", csv_bytes(sinus(seconds=4)))]
    made = httpx.post(f"{gw}/api/health/patients", headers=auth(login("doctor_a")),
                      json={"name": "心电患者", "id_number": valid_id_number(uuid.uuid4().int)})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    ok = upload(gw, login("doctor_a"), csv, patient_id=pid, clinical_note="胸痛 2 小时")
    assert ok.status_code == 201 and ok.json()["patient_id"] == pid
    assert ok.json()["clinical_note"] == "胸痛 2 小时"
    assert upload(gw, login("doctor_b"), csv, patient_id=pid).status_code == 422  # not in Lijia's register
    assert upload(gw, login("doctor_a"), csv, patient_id=str(uuid.uuid4())).status_code == 422
    assert upload(gw, login("doctor_a"), csv, patient_id="not-a-uuid").status_code == 422
    listed = httpx.get(f"{gw}/api/ecg/recordings", params={"patient_id": pid}, headers=auth(login("doctor_a")))
    assert [r["id"] for r in listed.json()["items"]] == [ok.json()["id"]]


def test_declared_oversize_upload_is_413(platform, login) -> None:
    """A Content-Length beyond ECG_MAX_UPLOAD_BYTES is refused before a byte of the body is read."""
    import socket
    from urllib.parse import urlsplit

    from services.ecg.settings import ecg_settings

    url = urlsplit(platform.service_url("ecg"))
    head = (
        f"POST /api/ecg/recordings HTTP/1.1\r\nHost: {url.hostname}\r\n"
        f"Authorization: Bearer {login('doctor_a')}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {ecg_settings().max_upload_bytes + 1}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"--x\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        answer = b"".join(chunks).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "payload_too_large" in answer
