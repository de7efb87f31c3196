"""A room nobody is in any more is released after ``CONSULT_ROOM_IDLE_SECONDS`` (set small here): the registry
forgets it, peer connections are closed, fan-out tasks end, the running recording is finished and uploaded
(its temporary files removed), and the recording's stop is recorded as the room's own (reason ``room_idle``).
A room with someone still in it is not released, however long it stays."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from services.consult.rooms.client import MemorySignal, RoomClient
from services.consult.rooms.ice import offer_host_addresses
from services.consult.rooms.recording import RecordedFile, RecordingChange, RecordingContext
from services.consult.rooms.registry import RoomRegistry
from services.consult.rooms.room import RoomServices, RoomUser
from services.consult.rooms.settings import RoomSettings
from services.consult.rooms.signaling import serve

IDLE = 1.0
HOST = RoomUser(uuid.uuid4(), "专家")
GUEST = RoomUser(uuid.uuid4(), "乡镇医生")


class Registry(RoomRegistry):
    """The real registry, with the database parts (recording rows, audit) kept in lists."""

    def __init__(self, tmp: Path) -> None:
        from common.storage_file import FileStore

        super().__init__(RoomSettings(ice_servers=[], room_idle_seconds=IDLE),
                         store=FileStore(tmp / "objects", secret="test"), db=None, recording_dir=tmp / "rec")
        self.saved: list[tuple[RecordingContext, uuid.UUID, list[tuple[uuid.UUID, str, RecordedFile]]]] = []
        self.changes: list[RecordingChange] = []

    def room_services(self) -> RoomServices:
        services = super().room_services()
        services.save_rows, services.on_recording = self._keep_rows, self._keep_change
        return services

    async def _keep_rows(self, ctx: RecordingContext, rid: uuid.UUID,
                         files: list[tuple[uuid.UUID, str, RecordedFile]]) -> None:
        self.saved.append((ctx, rid, files))

    async def _keep_change(self, change: RecordingChange) -> None:
        self.changes.append(change)


async def test_an_empty_room_is_released_after_the_idle_time(tmp_path: Path) -> None:
    offer_host_addresses(["127.0.0.1"])
    before = set(asyncio.all_tasks())
    registry = Registry(tmp_path)
    session_id = uuid.uuid4()
    room = await registry.room(session_id, uuid.uuid4(), HOST.user_id)
    servers: list[asyncio.Task[None]] = []

    def connect(user: RoomUser) -> RoomClient:
        client_end, server_end = MemorySignal.pair()
        servers.append(asyncio.create_task(serve(server_end, room, user)))
        return RoomClient(client_end)

    try:
        host = connect(HOST)
        assert (await host.join())["type"] == "admitted"
        guest = connect(GUEST)
        assert (await guest.join())["type"] == "waiting"
        lobby = await host.wait_for("lobby", lambda m: bool(m["waiting"]))
        await host.admit(lobby["waiting"][0]["participant_id"])
        await guest.wait_for("admitted")
        await host.start_media()
        await guest.start_media()
        assert host.participant_id and guest.participant_id
        await guest.wait_frames(host.participant_id, "video", 5)
        for c in (host, guest):
            await c.send({"type": "record_consent", "consent": True})
        await host.wait_for("participants", lambda m: all(p["consented"] for p in m["participants"]))
        await host.send({"type": "record", "action": "start"})
        await host.wait_for("recording", lambda m: m["active"])
        await asyncio.sleep(1.0)
        pcs = [p.pc for p in room.participants.values()]

        # the guest leaves; the host stays well past the idle time: the room lives on
        await guest.close()
        await asyncio.sleep(IDLE * 2.5)
        assert registry.rooms.get(session_id) is room and not room.closed and room.recording is not None

        # the host leaves too (its socket just drops): nobody is left
        await host.drop()
        for _ in range(100):
            if session_id not in registry.rooms and room.closed and registry.saved:
                break
            await asyncio.sleep(0.1)
        assert session_id not in registry.rooms and room.closed
        assert all(pc is not None and pc.connectionState == "closed" for pc in pcs)
        assert all(not p.sources and not p.slots and p.pc is None for p in room.participants.values())
        assert registry.saved and len(registry.saved[0][2]) == 4  # two cameras, two microphones, uploaded
        assert not any((tmp_path / "rec").iterdir()), "temporary recording files are left"
        assert [(c.action, c.reason) for c in registry.changes] == [("started", None), ("stopped", "room_idle")]
        assert registry.changes[0].by_user_id == HOST.user_id and registry.changes[1].by_user_id is None

        # a new socket for the same session gets a fresh room
        again = await registry.room(session_id, room.consult_id, HOST.user_id)
        assert again is not room
    finally:
        await registry.close_all()
        for t in servers:
            t.cancel()
        await asyncio.gather(*servers, return_exceptions=True)
    for _ in range(50):  # aiortc's own transport tasks end a moment after close()
        left: list[Any] = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()]
        if not left:
            break
        await asyncio.sleep(0.1)
    assert not left, f"tasks left: {left}"
