"""Critical values (危急值) end to end: a synthetic VT uploaded by the township doctor raises exactly one alert,
pushed over the WebSocket to the reading centre's specialist (through the gateway) and to the township
(directly, token in the subprotocol); a noisy trace raises none; escalation and acknowledgement."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from gateway.identity.seed import demo_account
from tests.conftest import auth
from tests.ecg.ecg_service_support import csv_bytes, noisy_bradycardia, upload, ventricular_tachycardia, wait_analysed


def ws_url(base: str) -> str:
    return "ws" + base[4:] + "/api/ecg/alerts/ws"


def next_of(ws: ClientConnection, kind: str, recording_id: str, timeout: float = 60) -> dict[str, Any]:
    """The next message of ``kind`` about ``recording_id`` (other traffic is skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind} message for {recording_id} within {timeout} s")
        msg = json.loads(ws.recv(timeout=left))
        if msg["type"] == kind and msg["alert"]["recording_id"] == recording_id:
            return msg


def snapshot(ws: ClientConnection) -> list[dict[str, Any]]:
    first = json.loads(ws.recv(timeout=10))
    assert first["type"] == "snapshot"
    return list(first["alerts"])


@pytest.fixture(scope="module")
def critical(platform, login, celery_worker) -> dict[str, Any]:
    """A VT of a registered patient uploaded while the specialist (via the gateway) and doctor_a (directly)
    listen."""
    reader_token, doctor_token = login("specialist"), login("doctor_a")
    patient = httpx.post(f"{platform.gateway_url}/api/health/patients", headers=auth(doctor_token), timeout=30,
                         json={"name": "危急值患者", "sex": "male", "birth_date": "1951-02-03"})
    assert patient.status_code == 201, patient.text
    with connect(f"{ws_url(platform.gateway_url)}?access_token={reader_token}", open_timeout=10) as reader, \
            connect(ws_url(platform.service_url("ecg")), subprotocols=["bearer", doctor_token],
                    open_timeout=10) as doctor:
        assert doctor.subprotocol == "bearer"
        snapshot(reader), snapshot(doctor)
        started = time.monotonic()
        r = upload(platform.gateway_url, doctor_token, [("vt.csv", csv_bytes(ventricular_tachycardia()))],
                   priority="stat", clinical_note="心悸, 晕厥", patient_id=patient.json()["id"])
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        pushed = next_of(reader, "alert", rid)
        latency = time.monotonic() - started
        pushed_doctor = next_of(doctor, "alert", rid)
    return {"id": rid, "pushed": pushed["alert"], "pushed_doctor": pushed_doctor["alert"], "latency": latency,
            "patient_id": patient.json()["id"]}


def test_vt_raises_exactly_one_alert_pushed_within_seconds(platform, login, critical) -> None:
    alert = critical["pushed"]
    assert critical["latency"] < 30, f"alert took {critical['latency']:.1f} s from upload to the reader's screen"
    assert alert["finding"] == "vf_vt" and alert["status"] == "open" and alert["priority"] == "stat"
    assert alert["message_zh"].startswith("危急值") and alert["message_en"].startswith("Critical value")
    assert critical["pushed_doctor"]["id"] == alert["id"]
    # the patient travels with the alert: in the WebSocket message and in the list
    assert alert["patient_id"] == critical["pushed_doctor"]["patient_id"] == critical["patient_id"]
    for user in ("specialist", "doctor_a"):
        listed = httpx.get(f"{platform.gateway_url}/api/ecg/alerts", headers=auth(login(user))).json()["items"]
        assert [a["id"] for a in listed if a["recording_id"] == critical["id"]] == [alert["id"]]
        assert {a["patient_id"] for a in listed if a["recording_id"] == critical["id"]} == {critical["patient_id"]}
    for user in ("doctor_b", "specialist_city"):
        listed = httpx.get(f"{platform.gateway_url}/api/ecg/alerts", headers=auth(login(user))).json()["items"]
        assert critical["id"] not in {a["recording_id"] for a in listed}
    rec = wait_analysed(platform.gateway_url, login("specialist"), critical["id"])
    assert rec["critical"] is True and rec["alert_id"] == alert["id"]
    assert [f["code"] for f in rec["findings"]] == ["vf_vt"]


async def test_one_event_and_a_redelivered_task_changes_nothing(db, celery_client, critical) -> None:
    import asyncio

    from common.auth import system_principal

    result = await asyncio.to_thread(
        lambda: celery_client.send_task("ecg.analyze_recording", args=[critical["id"]]).get(timeout=60)
    )
    assert result["status"] == "already_analysed"
    async with db.transaction(system_principal()) as conn:
        alerts = await conn.fetchval("SELECT count(*) FROM ecg.alerts WHERE recording_id = $1",
                                     uuid.UUID(critical["id"]))
        events = await conn.fetch("SELECT event_type, payload FROM ecg.outbox WHERE subject_id = $1",
                                  critical["id"])
    assert alerts == 1
    kinds = [e["event_type"] for e in events]
    assert kinds.count("ecg.critical_value") == 1 and kinds.count("ecg.analysis_completed") == 1
    assert kinds.count("ecg.recording_received") == 1
    assert next(e["payload"] for e in events if e["event_type"] == "ecg.critical_value")["finding"] == "vf_vt"


def test_noisy_trace_raises_none(platform, login, celery_worker) -> None:
    token = login("doctor_a")
    r = upload(platform.gateway_url, token, [("noisy.csv", csv_bytes(noisy_bradycardia()))], priority="urgent")
    assert r.status_code == 201, r.text
    rec = wait_analysed(platform.gateway_url, token, r.json()["id"])
    assert rec["status"] == "ready"
    assert rec["critical"] is False and rec["alert_id"] is None and rec["findings"] == []
    listed = httpx.get(f"{platform.gateway_url}/api/ecg/alerts", headers=auth(login("specialist"))).json()["items"]
    assert rec["id"] not in {a["recording_id"] for a in listed}


def test_websocket_needs_a_clinical_token(platform, login) -> None:
    for url in (ws_url(platform.gateway_url), ws_url(platform.service_url("ecg"))):
        with pytest.raises(InvalidStatus) as missing:
            connect(url, open_timeout=10)
        assert missing.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as analyst:
        connect(f"{ws_url(platform.service_url('ecg'))}?access_token={login('analyst')}", open_timeout=10)
    assert analyst.value.response.status_code == 403


def test_unacknowledged_alert_escalates(platform, login, celery_client, critical) -> None:
    from common.tasks import BEAT_SCHEDULE

    assert BEAT_SCHEDULE["ecg.escalate_alerts"]["task"] == "ecg.escalate_alerts"
    with connect(f"{ws_url(platform.gateway_url)}?access_token={login('specialist')}", open_timeout=10) as reader:
        in_snapshot = [a for a in snapshot(reader) if a["recording_id"] == critical["id"]]
        assert [a["patient_id"] for a in in_snapshot] == [critical["patient_id"]]
        # the beat runs it with ECG_ALERT_ESCALATION_MINUTES; here: escalate whatever is open now
        result = celery_client.send_task("ecg.escalate_alerts", kwargs={"after_minutes": 0}).get(timeout=60)
        assert critical["pushed"]["id"] in result["escalated"]
        pushed = next_of(reader, "escalation", critical["id"], timeout=20)
    assert pushed["alert"]["escalation_level"] == 1 and pushed["alert"]["escalated_at"]
    assert pushed["alert"]["patient_id"] == critical["patient_id"]
    quiet = celery_client.send_task("ecg.escalate_alerts").get(timeout=60)  # default: 10 minutes not yet passed
    assert critical["pushed"]["id"] not in quiet["escalated"]
    assert "requeued" in celery_client.send_task("ecg.requeue_stalled").get(timeout=60)  # the other beat entry


def test_acknowledge(platform, login, critical) -> None:
    gw, alert_id = platform.gateway_url, critical["pushed"]["id"]
    url = f"{gw}/api/ecg/alerts/{alert_id}/acknowledge"
    assert httpx.post(url, headers=auth(login("doctor_b"))).status_code == 404
    assert httpx.post(url, headers=auth(login("analyst"))).status_code == 403
    assert httpx.post(url, headers=auth(login("tech_a"))).status_code == 403
    with connect(f"{ws_url(gw)}?access_token={login('specialist')}", open_timeout=10) as reader:
        snapshot(reader)
        r = httpx.post(url, json={"note": "已电话通知患者立即转诊"}, headers=auth(login("doctor_a")))
        assert r.status_code == 200, r.text
        pushed = next_of(reader, "acknowledged", critical["id"], timeout=10)
    body = r.json()
    assert body["status"] == "acknowledged" and body["acknowledged_name"] == demo_account("doctor_a").display_name
    assert body["patient_id"] == pushed["alert"]["patient_id"] == critical["patient_id"]
    assert body["acknowledge_note"] == "已电话通知患者立即转诊" and pushed["alert"]["status"] == "acknowledged"
    again = httpx.post(url, headers=auth(login("specialist")))
    assert again.status_code == 409
    open_now = httpx.get(f"{gw}/api/ecg/alerts", headers=auth(login("specialist"))).json()["items"]
    assert alert_id not in {a["id"] for a in open_now}
    recent = httpx.get(f"{gw}/api/ecg/alerts", params={"include_acknowledged": True},
                       headers=auth(login("specialist"))).json()["items"]
    assert alert_id in {a["id"] for a in recent}
