"""Video rooms through the gateway: real signaling over the WebSocket, real peer connections to the consult
service's aiortc peer (ICE on loopback, no ICE servers), real recordings in object storage.

specialist (孙主任) is the consultant and the host; doctor_a (the requester) waits until admitted;
doctor_b takes no part.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import websockets

from services.consult.rooms.client import RoomClient, WebSocketSignal
from services.consult.rooms.ice import offer_host_addresses
from tests.conftest import Platform, auth
from tests.consult.consult_support import principal_of
from tests.consult.flow_support import accepted_consult, api


def signal_url(platform: Platform, session_id: str) -> str:
    return "ws" + platform.gateway_url[4:] + f"/api/consult/sessions/{session_id}/signal"


class Session:
    def __init__(self, platform: Platform, login: Callable[[str], str]) -> None:
        self.platform = platform
        self.host_token = login("specialist")
        self.guest_token = login("doctor_a")
        self.consult = accepted_consult(platform.gateway_url, self.guest_token, self.host_token)
        r = httpx.post(api(platform.gateway_url, f"/consults/{self.consult['id']}/sessions"),
                       headers=auth(self.guest_token), json={}, timeout=20)
        assert r.status_code == 201, r.text
        self.id = str(r.json()["session_id"])
        self.url = signal_url(platform, self.id)
        self.clients: list[RoomClient] = []

    async def client(self, token: str, **kw: Any) -> RoomClient:
        c = RoomClient(await WebSocketSignal.open(self.url, token), **kw)
        self.clients.append(c)
        return c

    async def host_and_guest(self) -> tuple[RoomClient, RoomClient]:
        host = await self.client(self.host_token)
        admitted = await host.join()
        assert admitted["type"] == "admitted" and admitted["host"] is True, admitted
        guest = await self.client(self.guest_token)
        assert (await guest.join())["type"] == "waiting"
        lobby = await host.wait_for("lobby", lambda m: bool(m["waiting"]))
        assert lobby["waiting"][0]["user_id"] != admitted["participant_id"]
        await host.admit(lobby["waiting"][0]["participant_id"])
        assert (await guest.wait_for("admitted"))["host"] is False
        await host.start_media()
        await guest.start_media()
        return host, guest

    def end(self) -> None:
        r = httpx.post(api(self.platform.gateway_url, f"/sessions/{self.id}/end"), headers=auth(self.host_token),
                       timeout=20)
        assert r.status_code == 200, r.text


@pytest.fixture
async def session(platform: Platform, login: Callable[[str], str]) -> AsyncIterator[Session]:
    offer_host_addresses(["127.0.0.1"])  # this process's peers offer loopback only
    s = Session(platform, login)
    yield s
    for c in s.clients:
        await c.close()
    s.end()


async def test_host_admits_and_both_receive(session: Session) -> None:
    host, guest = await session.host_and_guest()
    assert host.participant_id and guest.participant_id
    got = await guest.wait_frames(host.participant_id, "video", 10)
    assert (got.width, got.height) == (320, 240)
    got = await host.wait_frames(guest.participant_id, "video", 10)
    assert (got.width, got.height) == (320, 240)
    assert (await host.wait_frames(guest.participant_id, "audio", 25)).samples > 0
    assert (await guest.wait_frames(host.participant_id, "audio", 25)).samples > 0
    people = await host.wait_for("participants", lambda m: len(m["participants"]) == 2)
    assert {p["host"] for p in people["participants"]} == {True, False}
    # the guest may not admit or record: only the host
    mark = len(guest.messages)
    await guest.send({"type": "record", "action": "start"})
    assert (await guest.wait_for("error", after=mark))["code"] == "not_host"


async def test_recording_needs_everyones_consent(session: Session, platform: Platform,
                                                 login: Callable[[str], str], admin_db: Any) -> None:
    host, guest = await session.host_and_guest()
    assert host.participant_id and guest.participant_id
    await guest.wait_frames(host.participant_id, "video", 5)
    await host.wait_frames(guest.participant_id, "video", 5)
    await host.send({"type": "record_consent", "consent": True})
    mark = len(host.messages)
    await host.send({"type": "record", "action": "start"})
    refused = await host.wait_for("error", after=mark)
    assert refused["code"] == "consent_required", refused

    await guest.send({"type": "record_consent", "consent": True})
    await host.wait_for("participants", lambda m: all(p["consented"] for p in m["participants"]))
    await host.send({"type": "record", "action": "start"})
    started = await guest.wait_for("recording", lambda m: m["active"])
    await asyncio.sleep(3.0)
    await host.send({"type": "record", "action": "stop"})
    await guest.wait_for("recording", lambda m: not m["active"])

    files = await _recordings(platform, session, count=4)
    assert {f["kind"] for f in files} == {"audio", "video"}
    assert all(f["recording_id"] == started["recording_id"] for f in files)
    http = httpx.AsyncClient(timeout=20)
    for f in files:
        r = await http.get(api(platform.gateway_url, f"/recordings/{f['id']}/file"), headers=auth(session.host_token))
        assert r.status_code == 200 and r.headers["content-type"] == f"{f['kind']}/webm"
        seconds = _decoded_seconds(r.content, f["kind"])
        assert abs(seconds - 3.0) <= 1.0, (f, seconds)
        assert abs(f["duration_seconds"] - 3.0) <= 1.0, f
    outsider = await http.get(api(platform.gateway_url, f"/recordings/{files[0]['id']}/file"),
                              headers=auth(login("doctor_b")))
    await http.aclose()
    assert outsider.status_code == 404
    assert not any(_recording_dir(platform).rglob("*.webm")), "temporary recording files are left"

    # start and stop are audited (who, when) and evented, by id: the host started and stopped it
    audits, events = await _recording_trail(admin_db, started["recording_id"], 2)
    host_id = str(principal_of(session.host_token).user_id)
    assert [(a["action"], str(a["actor_id"]), a["actor_name"]) for a in audits] == [
        ("consult.recording.start", host_id, "specialist"), ("consult.recording.stop", host_id, "specialist")]
    assert all(a["object_type"] == "consult_recording" and a["detail"]["session_id"] == session.id for a in audits)
    assert [e["event_type"] for e in events] == ["consult.recording_started", "consult.recording_stopped"]
    assert [e["payload"]["by_user_id"] for e in events] == [host_id, host_id]
    assert events[1]["payload"]["reason"] == "host" and events[0]["payload"]["at"]
    assert len(events[0]["payload"]["consented_user_ids"]) == 2
    assert all(str(e["facility_id"]) == session.consult["facility_id"] for e in events)
    assert "测试患者" not in str([*audits, *events])


async def _recording_trail(admin_db: Any, recording_id: str, count: int) -> tuple[list[Any], list[Any]]:
    """The audit rows and outbox events of a recording (the stop is written just after it is announced)."""
    for _ in range(100):
        async with admin_db.pool.acquire() as conn:
            audits = await conn.fetch("SELECT action, actor_id, actor_name, object_type, detail FROM audit.events"
                                      " WHERE object_id = $1 ORDER BY seq", recording_id)
            events = await conn.fetch("SELECT event_type, facility_id, payload FROM consult.outbox"
                                      " WHERE payload->>'recording_id' = $1 ORDER BY occurred_at", recording_id)
        if len(audits) >= count and len(events) >= count:
            return list(audits), list(events)
        await asyncio.sleep(0.1)
    raise AssertionError(f"recording trail incomplete: {audits} {events}")


async def _recordings(platform: Platform, session: Session, *, count: int) -> list[dict[str, Any]]:
    url = api(platform.gateway_url, f"/consults/{session.consult['id']}/recordings")
    async with httpx.AsyncClient(timeout=20) as http:
        for _ in range(100):
            r = await http.get(url, headers=auth(session.guest_token))
            assert r.status_code == 200, r.text
            if len(r.json()) >= count:
                return list(r.json())
            await asyncio.sleep(0.1)
    raise AssertionError(f"recordings did not appear: {r.json()}")


def _decoded_seconds(data: bytes, kind: str) -> float:
    """Seconds from the first to the last decoded frame's end, by decoding every frame."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0] if kind == "audio" else container.streams.video[0]
        first = last = None
        for frame in container.decode(stream):
            assert frame.pts is not None and frame.time_base is not None
            t = float(frame.pts * frame.time_base)
            first = t if first is None else first
            last = t + (frame.samples / frame.sample_rate if kind == "audio" else 1 / 15)  # type: ignore[union-attr]
        assert first is not None and last is not None
        return last - first


def _recording_dir(platform: Platform) -> Path:
    return Path(platform.env["TH_VAR_DIR"]) / "consult-recordings"


async def test_dropped_participant_reconnects(session: Session) -> None:
    host, guest = await session.host_and_guest()
    assert host.participant_id and guest.participant_id
    await guest.wait_frames(host.participant_id, "video", 5)
    first_id = guest.participant_id
    await guest.drop()  # the network went away: no leave, no close handshake

    again = await session.client(session.guest_token)
    admitted = await again.join()
    assert admitted["type"] == "admitted", admitted  # admitted before in this session: no waiting room
    assert admitted["participant_id"] == first_id
    await again.start_media()
    got = await again.wait_frames(host.participant_id, "video", 10)
    assert (got.width, got.height) == (320, 240)
    await host.wait_frames(first_id, "video", 10)


async def test_non_participant_is_refused(session: Session, login: Callable[[str], str]) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await WebSocketSignal.open(session.url, login("doctor_b"))
    assert refused.value.response.status_code == 404
    with pytest.raises(websockets.InvalidStatus) as missing:
        await WebSocketSignal.open(signal_url(session.platform, "00000000-0000-4000-8000-000000000000"),
                                   login("doctor_b"))
    assert missing.value.response.status_code == 404
    assert refused.value.response.body == missing.value.response.body  # hidden = missing
    with pytest.raises(websockets.InvalidStatus) as anonymous:
        await WebSocketSignal.open(session.url, "not-a-token")
    assert anonymous.value.response.status_code == 401


async def test_session_end_releases_the_room(session: Session, platform: Platform, admin_db: Any) -> None:
    host, guest = await session.host_and_guest()
    assert host.participant_id
    await guest.wait_frames(host.participant_id, "video", 5)
    for c in (host, guest):
        await c.send({"type": "record_consent", "consent": True})
    await host.wait_for("participants", lambda m: all(p["consented"] for p in m["participants"]))
    await host.send({"type": "record", "action": "start"})
    recording_id = (await host.wait_for("recording", lambda m: m["active"]))["recording_id"]
    await asyncio.sleep(1.0)
    session.end()
    await host.wait_for("ended")
    await guest.wait_for("ended")
    await host.wait_for("_closed")  # the server closed the sockets
    await guest.wait_for("_closed")
    files = await _recordings(platform, session, count=4)  # the running recording was kept
    assert len(files) == 4
    assert not any(_recording_dir(platform).rglob("*.webm")), "temporary recording files are left"
    audits, events = await _recording_trail(admin_db, recording_id, 2)  # stopped by the room itself
    assert audits[1]["action"] == "consult.recording.stop" and audits[1]["actor_name"] == "system"
    assert events[1]["payload"]["reason"] == "session_ended" and events[1]["payload"]["by_user_id"] is None
    with pytest.raises(websockets.InvalidStatus) as ended:
        await WebSocketSignal.open(session.url, session.host_token)
    assert ended.value.response.status_code == 409
