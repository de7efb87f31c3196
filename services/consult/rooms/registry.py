"""The rooms of this process, by session id: created on the first join, closed when the session ends
(``end``, also on a message on Redis channel ``SESSION_ENDED_CHANNEL`` from whichever process ended it) or
when nobody has been in it for ``CONSULT_ROOM_IDLE_SECONDS``, and all closed on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any
from uuid import UUID

from common.auth import system_principal
from common.db import Database
from common.storage import ObjectStore
from services.consult.rooms import repository as repo
from services.consult.rooms.recording import RecordedFile, RecordingContext
from services.consult.rooms.room import Room, RoomServices
from services.consult.rooms.settings import RoomSettings

log = logging.getLogger("telehealth.consult.rooms")

SESSION_ENDED_CHANNEL = "consult:sessions:ended"


async def publish_session_ended(redis: Any, session_id: UUID) -> None:
    """Tell every consult process that a session ended (call after the ending transaction commits)."""
    await redis.publish(SESSION_ENDED_CHANNEL, str(session_id))


class RoomRegistry:
    """Rooms by session id, in this process."""

    def __init__(self, settings: RoomSettings, *, store: ObjectStore | None, db: Database | None,
                 recording_dir: Path) -> None:
        self.settings = settings
        self.store = store
        self.db = db
        self.recording_dir = recording_dir
        self.rooms: dict[UUID, Room] = {}
        self._idle: dict[UUID, asyncio.Task[None]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def room_services(self) -> RoomServices:
        return RoomServices(settings=self.settings, store=self.store,
                            save_rows=self._save_rows if self.db is not None else None,
                            recording_dir=self.recording_dir, on_change=self._on_change)

    async def room(self, session_id: UUID, consult_id: UUID, host_user_id: UUID | None) -> Room:
        """The session's room, opened if it is not yet."""
        async with self._lock:
            room = self.rooms.get(session_id)
            if room is None or room.closed:
                room = Room(session_id, consult_id, host_user_id, self.room_services())
                self.rooms[session_id] = room
            return room

    async def end(self, session_id: UUID) -> bool:
        """End the session's room if it is open here: everyone is told, everything released."""
        room = self.rooms.pop(session_id, None)
        self._cancel_idle(session_id)
        if room is None:
            return False
        async with room.lock:
            await room.end()
        return True

    async def close_all(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        for session_id in list(self.rooms):
            await self.end(session_id)

    def listen(self, redis: Any) -> None:
        """End rooms when any process publishes their session's end."""
        self._listener = asyncio.create_task(self._listen(redis), name="consult-rooms-ended-listener")

    async def _listen(self, redis: Any) -> None:
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(SESSION_ENDED_CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        data = message["data"]
                        with contextlib.suppress(ValueError):
                            await self.end(UUID(data.decode() if isinstance(data, bytes) else str(data)))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("session-ended listener lost Redis; retrying")
                await asyncio.sleep(1.0)

    def _on_change(self, room: Room) -> None:
        if room.empty and not room.closed:
            if room.session_id not in self._idle:
                self._idle[room.session_id] = asyncio.create_task(
                    self._close_when_idle(room), name=f"consult-room-idle-{room.session_id}")
        else:
            self._cancel_idle(room.session_id)

    def _cancel_idle(self, session_id: UUID) -> None:
        task = self._idle.pop(session_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _close_when_idle(self, room: Room) -> None:
        await asyncio.sleep(self.settings.room_idle_seconds)
        self._idle.pop(room.session_id, None)
        if room.empty and self.rooms.get(room.session_id) is room:
            del self.rooms[room.session_id]
            async with room.lock:
                await room.release()

    async def _save_rows(self, context: RecordingContext, recording_id: UUID,
                         files: list[tuple[UUID, str, RecordedFile]]) -> None:
        assert self.db is not None
        async with self.db.transaction(system_principal()) as conn:
            where = await repo.session_facilities(conn, context.session_id)
            if where is None:
                raise RuntimeError("the session of a recording is gone")
            for file_id, key, f in files:
                await repo.insert_recording(conn, repo.RecordingObject(
                    id=file_id, recording_id=recording_id, session_id=context.session_id,
                    consult_id=context.consult_id, participant_user_id=f.participant_user_id, kind=f.kind,
                    content_type=f"{f.kind}/webm", size_bytes=f.path.stat().st_size,
                    duration_seconds=f.duration_seconds, started_by=context.started_by, started_at=f.started_at,
                    ended_at=f.ended_at, facility_id=where.facility_id, target_facility_id=where.target_facility_id,
                    object_key=key, consented_user_ids=context.consented_user_ids))
