"""Critical-finding alerts (影像危急值): the county radiologist flags a critical finding in a township's CT; the
township's doctor hears it on the alerts WebSocket (through the gateway), another township's doctor does not;
the alert is listed, acknowledged by the requesting facility's doctor only (once), escalated when nobody does,
and signing the report does not raise it twice."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conftest import auth
from tests.imaging.imaging_support import make_instance, stow, uid


def ws_url(base: str) -> str:
    return "ws" + base[4:] + "/api/imaging/alerts/ws"


def next_message(ws: ClientConnection, timeout: float = 30) -> dict[str, Any]:
    """The next message that is not a heartbeat."""
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if msg["type"] != "heartbeat":
            return msg


def _study(platform: Any, token: str) -> str:
    study_uid = uid()
    r = stow(platform.gateway_url, token, [make_instance(study=study_uid, description="头颅CT平扫")])
    assert r.status_code == 200, r.text
    return study_uid


def _flag_critical(platform: Any, token: str, study_uid: str, note: str) -> dict[str, Any]:
    base = f"{platform.gateway_url}/api/imaging/studies/{study_uid}"
    claim = httpx.post(f"{base}/claim", headers=auth(token), timeout=30)
    assert claim.status_code == 200, claim.text
    r = httpx.put(f"{base}/report", headers=auth(token), timeout=30, json={
        "version": claim.json()["version"], "findings": "右侧额颞部新月形高密度影。", "impression": "急性硬膜下血肿。",
        "critical": True, "critical_note": note, "ready": True})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _alerts(platform: Any, token: str, **params: Any) -> list[dict[str, Any]]:
    r = httpx.get(f"{platform.gateway_url}/api/imaging/alerts", headers=auth(token), params=params, timeout=30)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


@pytest.fixture(scope="module")
def flagged(platform, login) -> dict[str, Any]:
    """doctor_a (城关镇) and doctor_b (李家镇) listening through the gateway, the specialist on the service;
    the specialist flags a critical finding in 城关镇's study, then (the sentinel) in 李家镇's."""
    doctor_a, doctor_b, spec = login("doctor_a"), login("doctor_b"), login("specialist")
    cg_study, lj_study = _study(platform, doctor_a), _study(platform, doctor_b)
    with connect(f"{ws_url(platform.gateway_url)}?access_token={doctor_a}", open_timeout=10) as ws_a, \
            connect(f"{ws_url(platform.gateway_url)}?access_token={doctor_b}", open_timeout=10) as ws_b, \
            connect(ws_url(platform.service_url("imaging")), subprotocols=["bearer", spec],  # type: ignore[list-item]
                    open_timeout=10) as ws_spec:
        snapshots = [next_message(ws) for ws in (ws_a, ws_b, ws_spec)]
        assert all(s["type"] == "snapshot" for s in snapshots)
        report = _flag_critical(platform, spec, cg_study, "急性硬膜下血肿,中线移位,请立即转诊")
        to_a, to_spec = next_message(ws_a), next_message(ws_spec)
        # the sentinel: 李家镇's own alert must be the first thing doctor_b hears; 城关镇's was published
        # before it, so had it reached doctor_b it would have come first
        _flag_critical(platform, spec, lj_study, "李家镇病例危急值")
        to_b = next_message(ws_b)
    return {"cg": cg_study, "lj": lj_study, "report": report, "snapshots": snapshots, "to_a": to_a,
            "to_spec": to_spec, "to_b": to_b}


def test_the_requesting_doctor_hears_it_and_another_township_does_not(flagged) -> None:
    to_a = flagged["to_a"]
    assert to_a["type"] == "alert" and to_a["for_you"] is True
    alert = to_a["alert"]
    assert alert["study_instance_uid"] == flagged["cg"] and alert["report_id"] == flagged["report"]["id"]
    assert alert["status"] == "open" and alert["modality"] == "CT" and alert["signed"] is False
    assert "中线移位" in alert["note"] and alert["message_zh"].startswith("影像危急值(CT)")
    assert alert["reader_name"] and alert["priority"] == "routine"
    # the reading centre hears it too (its own finding, not for it to acknowledge)
    assert flagged["to_spec"]["alert"]["id"] == alert["id"] and flagged["to_spec"]["for_you"] is False
    # 李家镇's doctor: only 李家镇's alert
    assert flagged["to_b"]["type"] == "alert" and flagged["to_b"]["alert"]["study_instance_uid"] == flagged["lj"]
    assert flagged["to_b"]["for_you"] is True


def test_listed_for_the_requester_and_the_reading_centre_only(platform, login, flagged) -> None:
    alert_id = flagged["to_a"]["alert"]["id"]
    assert alert_id in {a["id"] for a in _alerts(platform, login("doctor_a"))}
    assert alert_id in {a["id"] for a in _alerts(platform, login("specialist"))}
    assert alert_id not in {a["id"] for a in _alerts(platform, login("doctor_b"))}
    assert alert_id not in {a["id"] for a in _alerts(platform, login("specialist_city"))}
    r = httpx.get(f"{platform.gateway_url}/api/imaging/alerts", headers=auth(login("hospital_admin")), timeout=30)
    assert r.status_code == 403  # not a clinical role


def test_only_the_requesting_facilitys_doctor_acknowledges_once(platform, login, flagged) -> None:
    alert_id = flagged["to_a"]["alert"]["id"]
    url = f"{platform.gateway_url}/api/imaging/alerts/{alert_id}/acknowledge"
    assert httpx.post(url, headers=auth(login("doctor_b")), json={}, timeout=30).status_code == 404
    assert httpx.post(url, headers=auth(login("specialist")), json={}, timeout=30).status_code == 403
    with connect(f"{ws_url(platform.gateway_url)}?access_token={login('doctor_a')}", open_timeout=10) as ws_a:
        snapshot = next_message(ws_a)
        assert alert_id in {a["id"] for a in snapshot["alerts"]}
        r = httpx.post(url, headers=auth(login("doctor_a")), json={"note": "已电话通知患者家属,转县医院"}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "acknowledged" and r.json()["acknowledge_note"].startswith("已电话")
        heard = next_message(ws_a)
        assert heard["type"] == "acknowledged" and heard["alert"]["id"] == alert_id
    assert httpx.post(url, headers=auth(login("doctor_a")), json={}, timeout=30).status_code == 409
    assert alert_id not in {a["id"] for a in _alerts(platform, login("doctor_a"))}
    assert alert_id in {a["id"] for a in _alerts(platform, login("doctor_a"), include_acknowledged="true")}


def test_signing_does_not_raise_it_again(platform, login, flagged) -> None:
    spec = login("specialist")
    r = httpx.post(f"{platform.gateway_url}/api/imaging/studies/{flagged['cg']}/report/sign", headers=auth(spec),
                   json={"version": flagged["report"]["version"]}, timeout=30)
    assert r.status_code == 200, r.text
    mine = [a for a in _alerts(platform, login("doctor_a"), include_acknowledged="true")
            if a["study_instance_uid"] == flagged["cg"]]
    assert len(mine) == 1


async def test_unacknowledged_alerts_escalate_and_are_heard_again(platform, login, db, flagged) -> None:
    import asyncio

    import redis.asyncio as aioredis

    from common.auth import system_principal
    from services.imaging import reading_alerts

    lj_alert = flagged["to_b"]["alert"]["id"]
    url = f"{ws_url(platform.gateway_url)}?access_token={login('doctor_b')}"

    def listen() -> dict[str, Any]:
        with connect(url, open_timeout=10) as ws:
            assert next_message(ws)["type"] == "snapshot"
            ready.set()
            while True:
                msg = next_message(ws)
                if msg["type"] == "escalation" and msg["alert"]["id"] == lj_alert:
                    return msg

    import threading

    ready = threading.Event()
    task = asyncio.get_running_loop().run_in_executor(None, listen)
    assert await asyncio.get_running_loop().run_in_executor(None, ready.wait, 15)
    redis = aioredis.from_url(platform.env["REDIS_URL"])
    try:
        due = await reading_alerts.escalate(db, redis, system_principal(), after_minutes=0)  # type: ignore[arg-type]
    finally:
        await redis.aclose()
    assert lj_alert in {str(a.id) for a in due}
    msg = await asyncio.wait_for(task, 30)
    assert msg["level"] >= 1 and msg["alert"]["escalation_level"] >= 1


def test_websocket_needs_a_clinical_token(platform, login) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(platform.gateway_url), open_timeout=10)
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{ws_url(platform.service_url('imaging'))}?access_token={login('hospital_admin')}",
                open_timeout=10)
    assert refused.value.response.status_code == 403
