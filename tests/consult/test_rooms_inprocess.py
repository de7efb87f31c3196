"""A room run in this process with aiortc clients over in-memory signaling: fan-out, reconnection and the
release of everything (peer connections, fan-out tasks, sinks, recorder files) when the session ends."""

from __future__ import annotations

import asyncio
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
