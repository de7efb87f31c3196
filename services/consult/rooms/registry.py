"""The rooms of this process, by session id: created on the first join, closed when the session ends
(``end``, also on a message on Redis channel ``SESSION_ENDED_CHANNEL`` from whichever process ended it) or
when nobody has been in it for ``CONSULT_ROOM_IDLE_SECONDS``, and all closed on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from common.audit import AuditEntry, write
from common.auth import Principal, system_principal
from common.db import Database
from common.events import record_event
from common.storage import ObjectStore
from services.consult.rooms import repository as repo
from services.consult.rooms.recording import RecordedFile, RecordingChange, RecordingContext
from services.consult.rooms.room import Room, RoomServices
from services.consult.rooms.settings import RoomSettings

log = logging.getLogger("telehealth.consult.rooms")

SESSION_ENDED_CHANNEL = "consult:sessions:ended"
# The one registry of this process (start_rooms claims it): a second would split a session's participants
# between two rooms that never meet.
_process_registry: RoomRegistry | None = None


def claim_process_registry(registry: RoomRegistry) -> None:
    """Make ``registry`` this process's one room registry; RuntimeError if another is running."""
    global _process_registry
    if _process_registry is not None and _process_registry is not registry:
        raise RuntimeError("a room registry is already running in this process: rooms live in one registry"
                           " (docs/consult.md \"Scaling out\")")
    _process_registry = registry


def release_process_registry(registry: RoomRegistry) -> None:
    global _process_registry
    if _process_registry is registry:
        _process_registry = None


def configured_workers(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Worker processes the server was asked for (uvicorn/gunicorn ``--workers N``, ``-w N``,
    ``WEB_CONCURRENCY``); 1 when none is named."""
    found = env.get("WEB_CONCURRENCY", "")
    args = list(argv)
    for i, arg in enumerate(args):
        if arg in ("--workers", "-w") and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith("--workers="):
            found = arg.split("=", 1)[1]
    try:
        return max(1, int(found))
    except ValueError:
        return 1


def warn_if_several_workers(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Log, loudly, when this service runs with several workers: each has its own rooms, and two people of one
    session who land on different workers never see each other."""
    workers = configured_workers(argv, env)
    if workers > 1:
        log.warning(
            "the consult service runs with %d workers, each with its own video rooms: two participants of one"
            " session on different workers never meet. Run one worker per consult process and pin"
            " /api/consult/sessions/{session_id}/signal to a process by session id (docs/consult.md"
            " \"Scaling out\")", workers)
    return workers


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
                            recording_dir=self.recording_dir, on_change=self._on_change,
                            on_recording=self._recording_changed if self.db is not None else None)

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
                await room.release("room_idle")

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

    async def _recording_changed(self, change: RecordingChange) -> None:
        """Audit row and outbox event (``consult.recording_started`` / ``_stopped``) of a recording's start or
        stop, in one transaction: who (user id; the room itself for automatic stops), when, which session;
        people by id only, never the patient."""
        assert self.db is not None
        verb = "start" if change.action == "started" else "stop"
        detail: dict[str, Any] = {
            "consult_id": str(change.consult_id), "session_id": str(change.session_id), "reason": change.reason,
            "at": change.at.isoformat(), "participant_user_ids": [str(u) for u in change.participant_user_ids],
            "consented_user_ids": [str(u) for u in change.consented_user_ids]}
        async with self.db.transaction(system_principal()) as conn:
            where = await repo.session_facilities(conn, change.session_id)
            if isinstance(change.by, Principal):
                entry = AuditEntry.for_principal(change.by, source="consult", action=f"consult.recording.{verb}",
                                                 outcome="success")
            else:  # stopped by the room itself (session ended, idle) or a user known by id only
                entry = AuditEntry(source="consult", action=f"consult.recording.{verb}", outcome="success",
                                   actor_id=change.by_user_id, actor_name=None if change.by_user_id else "system",
                                   facility_id=where.facility_id if where else None)
            entry.object_type, entry.object_id, entry.detail = "consult_recording", str(change.recording_id), detail
            await write(conn, entry)
            await record_event(
                conn, "consult", f"consult.recording_{change.action}",
                facility_id=where.facility_id if where else None, subject_type="consult", subject_id=change.consult_id,
                payload={**detail, "recording_id": str(change.recording_id),
                         "by_user_id": str(change.by_user_id) if change.by_user_id else None,
                         "target_facility_id": str(where.target_facility_id) if where else None})
