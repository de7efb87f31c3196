"""A room run in this process with aiortc clients over in-memory signaling: fan-out, reconnection and the
release of everything (peer connections, fan-out tasks, sinks, recorder files) when the session ends."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.consult.rooms.client import MemorySignal, RoomClient
from services.consult.rooms.ice import offer_host_addresses
from services.consult.rooms.recording import RecordedFile, RecordingContext
from services.consult.rooms.room import Room, RoomServices, RoomUser
from services.consult.rooms.settings import RoomSettings
from services.consult.rooms.signaling import serve

HOST = RoomUser(uuid.uuid4(), "专家")
GUEST = RoomUser(uuid.uuid4(), "乡镇医生")


class Harness:
    def __init__(self, tmp: Path) -> None:
        from common.storage_file import FileStore

        self.saved: list[tuple[RecordingContext, uuid.UUID, list[tuple[uuid.UUID, str, RecordedFile]]]] = []
        self.recording_dir = tmp / "rec"
        self.store = FileStore(tmp / "objects", secret="test")
        services = RoomServices(settings=RoomSettings(ice_servers=[]), store=self.store, save_rows=self._save,
                                recording_dir=self.recording_dir)
        self.room = Room(uuid.uuid4(), uuid.uuid4(), HOST.user_id, services)
        self.servers: list[asyncio.Task[None]] = []

    async def _save(self, ctx: RecordingContext, rid: uuid.UUID,
                    files: list[tuple[uuid.UUID, str, RecordedFile]]) -> None:
        self.saved.append((ctx, rid, files))

    def connect(self, user: RoomUser, **kw: Any) -> RoomClient:
        client_end, server_end = MemorySignal.pair()
        self.servers.append(asyncio.create_task(serve(server_end, self.room, user)))
        return RoomClient(client_end, **kw)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    offer_host_addresses(["127.0.0.1"])
    h = Harness(tmp_path)
    yield h
    if not h.room.closed:
        async with h.room.lock:
            await h.room.release()
    for t in h.servers:
        t.cancel()
    await asyncio.gather(*h.servers, return_exceptions=True)


async def _two_in_room(h: Harness) -> tuple[RoomClient, RoomClient]:
    host = h.connect(HOST)
    assert (await host.join())["type"] == "admitted"
    guest = h.connect(GUEST)
    assert (await guest.join())["type"] == "waiting"
    lobby = await host.wait_for("lobby", lambda m: bool(m["waiting"]))
    await host.admit(lobby["waiting"][0]["participant_id"])
    assert (await guest.wait_for("admitted"))["host"] is False
    await host.start_media()
    await guest.start_media()
    return host, guest


async def test_two_participants_receive_each_other(harness: Harness) -> None:
    host, guest = await _two_in_room(harness)
    assert host.participant_id and guest.participant_id
    got = await guest.wait_frames(host.participant_id, "video", 10)
    assert (got.width, got.height) == (320, 240)
    got = await host.wait_frames(guest.participant_id, "video", 10)
    assert (got.width, got.height) == (320, 240)
    assert (await host.wait_frames(guest.participant_id, "audio", 20)).samples > 0
    assert (await guest.wait_frames(host.participant_id, "audio", 20)).samples > 0
    await host.close()
    await guest.close()


async def test_release_leaves_nothing(harness: Harness) -> None:
    before = set(asyncio.all_tasks())
    host, guest = await _two_in_room(harness)
    assert host.participant_id and guest.participant_id
    await guest.wait_frames(host.participant_id, "video", 5)
    for c in (host, guest):
        await c.send({"type": "record_consent", "consent": True})
    await host.wait_for("participants", lambda m: all(p["consented"] for p in m["participants"]))
    await host.send({"type": "record", "action": "start"})
    await host.wait_for("recording", lambda m: m["active"])
    await asyncio.sleep(1.0)
    pcs = [p.pc for p in harness.room.participants.values()]
    async with harness.room.lock:
        await harness.room.end()
    await host.wait_for("ended")
    await guest.wait_for("ended")
    await host.close()
    await guest.close()
    await asyncio.gather(*harness.servers, return_exceptions=True)
    assert all(pc is not None and pc.connectionState == "closed" for pc in pcs)
    assert harness.saved and len(harness.saved[0][2]) == 4  # two cameras, two microphones, uploaded
    assert not any(harness.recording_dir.iterdir()), "temporary recording files are left"
    for _ in range(50):  # aiortc's own transport tasks end a moment after close()
        left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()]
        if not left:
            break
        await asyncio.sleep(0.1)
    assert not left, f"tasks left: {left}"
    encoders = [t.name for t in threading.enumerate() if t.name.startswith("consult-vp8")]
    assert not encoders, f"shared encoder threads left: {encoders}"


# -- encode once per source (shared_encoder.py) -------------------------------------------------------------

THIRD = RoomUser(uuid.uuid4(), "技师")


async def _enter(h: Harness, host: RoomClient, user: RoomUser) -> RoomClient:
    c = h.connect(user)
    assert (await c.join())["type"] == "waiting"
    lobby = await host.wait_for("lobby", lambda m: any(w["user_id"] == str(user.user_id) for w in m["waiting"]))
    await host.admit(next(w["participant_id"] for w in lobby["waiting"] if w["user_id"] == str(user.user_id)))
    await c.wait_for("admitted")
    await c.start_media()
    return c


def _video_source(h: Harness, participant_id: str) -> Any:
    return h.room.participants[participant_id].sources["video"]


async def test_vp8_slots_share_one_encoder_per_source(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiortc.codecs.vpx import Vp8Encoder

    host, guest = await _two_in_room(harness)
    assert host.participant_id and guest.participant_id
    await guest.wait_frames(host.participant_id, "video", 5)
    # a late joiner gets a decodable picture: its slot starts at a keyframe made for it
    source = _video_source(harness, host.participant_id)
    assert source.encoder is not None
    await asyncio.sleep(1.0)
    keyframes_before = source.encoder.keyframes
    third = await _enter(harness, host, THIRD)
    await third.wait_frames(host.participant_id, "video", 10)
    assert source.encoder.keyframes > keyframes_before

    # every video slot negotiated VP8 and is in packet mode; one encoder per source feeds both receivers
    for p in harness.room.admitted:
        assert all(s.tracks["video"].packets for s in p.slots)
    slots = [s.tracks["video"] for p in harness.room.admitted for s in p.slots
             if s.participant_id == host.participant_id]
    assert len(slots) == 2 and all(s.source is source for s in slots)
    sources = [_video_source(harness, p.participant_id) for p in harness.room.admitted]
    packed: list[int] = []
    original_pack = Vp8Encoder.pack

    def pack(self: Vp8Encoder, packet: Any) -> Any:  # a sender sending a shared packet (clients send frames)
        packed.append(1)
        return original_pack(self, packet)

    monkeypatch.setattr(Vp8Encoder, "pack", pack)
    encoded0 = sum(s.encoder.frames_encoded for s in sources)
    await asyncio.sleep(2.0)
    encoded = sum(s.encoder.frames_encoded for s in sources) - encoded0
    assert encoded > 10
    # each source has 2 receivers: every shared encode is sent (packetized, not encoded) by 2 senders
    assert len(packed) > 1.6 * encoded, (len(packed), encoded)
    assert third.from_participant(guest.participant_id or "", "video").frames > 0
    for c in (host, guest, third):
        await c.close()


async def test_encode_once_off_is_the_old_path(tmp_path: Path) -> None:
    offer_host_addresses(["127.0.0.1"])
    h = Harness(tmp_path)
    h.room.services.settings = RoomSettings(ice_servers=[], encode_once=False)
    try:
        host, guest = await _two_in_room(h)
        assert host.participant_id
        await guest.wait_frames(host.participant_id, "video", 5)
        assert _video_source(h, host.participant_id).encoder is None
        assert not any(s.tracks["video"].packets for p in h.room.admitted for s in p.slots)
        await host.close()
        await guest.close()
    finally:
        async with h.room.lock:
            await h.room.release()
        for t in h.servers:
            t.cancel()
        await asyncio.gather(*h.servers, return_exceptions=True)


async def test_packet_slot_waits_for_keyframes_and_drops_a_backlog() -> None:
    from av.packet import Packet

    from services.consult.rooms.media import PACKET_BUFFER, SinkTrack

    asked: list[bool] = []

    class Source:
        def request_keyframe(self) -> None:
            asked.append(True)

        def detach(self, sink: SinkTrack) -> None:
            pass

    sink = SinkTrack("video")
    sink.use_packets()
    sink.source = Source()  # type: ignore[assignment]
    sink.push_packet(Packet(b"\x01delta"), False)
    assert sink.frames_in == 0  # nothing before the first keyframe
    sink.push_packet(Packet(b"\x00key"), True)
    for _ in range(PACKET_BUFFER - 1):
        sink.push_packet(Packet(b"\x01delta"), False)
    assert sink.frames_in == PACKET_BUFFER and not asked
    sink.push_packet(Packet(b"\x01delta"), False)  # the sender fell behind
    assert sink.packets_dropped == PACKET_BUFFER and asked
    sink.push_packet(Packet(b"\x01delta"), False)
    assert sink.frames_in == PACKET_BUFFER  # waits for the keyframe it asked for
    sink.push_packet(Packet(b"\x00key"), True)
    got = await sink.recv()
    assert isinstance(got, Packet) and bytes(got) == b"\x00key"
    sink.source = None
    sink.stop()


async def test_pli_reaches_the_shared_encoder() -> None:
    """forward_keyframe_requests relies on aiortc's RTCRtpSender calling self._send_keyframe() for a PLI or
    FIR (no public hook): this fails if aiortc changes that."""
    from aiortc import RTCRtpSender
    from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket

    from services.consult.rooms.shared_encoder import forward_keyframe_requests

    class Transport:
        state = "new"

    asked: list[int] = []
    sender = RTCRtpSender("video", Transport())  # type: ignore[arg-type]
    other = RTCRtpSender("video", Transport())  # type: ignore[arg-type]
    forward_keyframe_requests(sender, lambda: asked.append(1))
    for fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
        await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=sender._ssrc))
    await other._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=other._ssrc))
    assert asked == [1, 1]  # this instance only
