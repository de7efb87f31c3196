"""HTTP and WebSocket layer of the video rooms: the signaling socket, the ICE servers for browsers, and the
recordings of a consult (docs/consult.md "Video rooms", "Signaling protocol")."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from common.auth import Principal, current_principal
from common.db import Database
from common.errors import AppError, Conflict, NotFound
from common.storage import ObjectStore
from common.ws_auth import authenticate_websocket, deny_websocket
from services.consult.access import session_for_participant, visible_consult
from services.consult.rooms import repository as repo
from services.consult.rooms.ice import offer_host_addresses
from services.consult.rooms.registry import (
    RoomRegistry,
    claim_process_registry,
    release_process_registry,
    warn_if_several_workers,
)
from services.consult.rooms.repository import RecordingFile
from services.consult.rooms.room import RoomUser
from services.consult.rooms.settings import room_settings
from services.consult.rooms.signaling import serve

log = logging.getLogger("telehealth.consult.rooms")
router = APIRouter(prefix="/api/consult", tags=["consult video rooms"])
MAX_MESSAGE_BYTES = 128 * 1024


async def start_rooms(app: FastAPI) -> None:
    """App startup: the host addresses media is offered on, the room registry, the session-ended listener."""
    settings = room_settings()
    offer_host_addresses(settings.media_addresses, loopback=settings.loopback)
    recording_dir = settings.recording_dir or app.state.settings.th_var_dir / "consult-recordings"
    recording_dir.mkdir(parents=True, exist_ok=True)
    registry = RoomRegistry(settings, store=app.state.store, db=app.state.db, recording_dir=recording_dir)
    claim_process_registry(registry)  # refuses a second registry in this process
    warn_if_several_workers(sys.argv, os.environ)
    registry.listen(app.state.redis)
    app.state.rooms = registry


async def stop_rooms(app: FastAPI) -> None:
    """App shutdown: every room ends (recordings are uploaded, peer connections closed)."""
    registry: RoomRegistry | None = getattr(app.state, "rooms", None)
    if registry is not None:
        await registry.close_all()
        release_process_registry(registry)


class WebSocketChannel:
    """A Starlette WebSocket as a signaling channel (JSON text frames)."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws

    async def receive(self) -> dict[str, Any] | None:
        while True:
            try:
                text = await self.ws.receive_text()
            except (WebSocketDisconnect, RuntimeError, KeyError):
                return None
            if len(text) > MAX_MESSAGE_BYTES:
                await self.send({"type": "error", "code": "bad_message", "detail": "message too large"})
                continue
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError:
                message = None
            if isinstance(message, dict):
                return message
            await self.send({"type": "error", "code": "bad_message", "detail": "messages are JSON objects"})

    async def send(self, message: dict[str, Any]) -> None:
        if self.ws.application_state == WebSocketState.CONNECTED:
            await self.ws.send_text(orjson.dumps(message).decode())

    async def close(self, code: int = 1000) -> None:
        if self.ws.application_state == WebSocketState.CONNECTED:
            await self.ws.close(code)


@router.websocket("/sessions/{session_id}/signal")
async def signal(ws: WebSocket, session_id: UUID) -> None:
    """Signaling of a session's video room (docs/consult.md "Signaling protocol"); token as for the chat socket
    (``access_token`` query or the ``["bearer", <token>]`` subprotocol). Only the consult's participants may
    connect (others: 404, like a session that does not exist); an ended session answers 409."""
    db: Database = ws.app.state.db
    try:
        principal, subprotocol = authenticate_websocket(ws)
        async with db.transaction(principal) as conn:
            session = await session_for_participant(conn, principal, session_id)
        if session.ended:
            raise Conflict("the session has ended")
    except AppError as exc:
        await deny_websocket(ws, exc)
        return
    ws.state.principal = principal  # the platform middleware audits the connection with it
    name = next((p.display_name for p in session.participants if p.user_id == principal.user_id),
                principal.display_name)
    registry: RoomRegistry = ws.app.state.rooms
    room = await registry.room(session_id, session.consult_id, session.host_user_id)
    await ws.accept(subprotocol=subprotocol)
    await serve(WebSocketChannel(ws), room, RoomUser(principal.user_id, name, principal))
    if ws.application_state == WebSocketState.CONNECTED:
        await ws.close()


@router.get("/ice-servers")
async def ice_servers(principal: Principal = Depends(current_principal)) -> list[dict[str, Any]]:
    """The ICE servers (RTCIceServer dicts) a browser uses for the video rooms (``CONSULT_ICE_SERVERS``)."""
    return room_settings().ice_servers


@router.get("/consults/{consult_id}/recordings", response_model=list[RecordingFile])
async def recordings(consult_id: UUID, request: Request,
                     principal: Principal = Depends(current_principal)) -> list[RecordingFile]:
    """The recorded track files of the consult's video sessions (one per camera or microphone and recording)."""
    db: Database = request.app.state.db
    async with db.transaction(principal) as conn:
        await visible_consult(conn, principal, consult_id)
        return await repo.recordings_of_consult(conn, consult_id)


@router.get("/recordings/{recording_id}/file", responses={200: {"content": {"video/webm": {}, "audio/webm": {}}}})
async def recording_file(recording_id: UUID, request: Request,
                         principal: Principal = Depends(current_principal)) -> StreamingResponse:
    """One recorded track file (WebM: VP8 video or Opus audio)."""
    db: Database = request.app.state.db
    store: ObjectStore = request.app.state.store
    async with db.transaction(principal) as conn:
        row = await repo.recording(conn, recording_id)
        if row is None:
            raise NotFound("no such recording")
        try:
            await visible_consult(conn, principal, row.consult_id)
        except NotFound:
            raise NotFound("no such recording") from None
    info = await store.stat(row.object_key)
    return StreamingResponse(
        _object(store, row.object_key), media_type=row.content_type,
        headers={"Content-Length": str(info.size),
                 "Content-Disposition": f'attachment; filename="{row.id}.webm"'},
    )


async def _object(store: ObjectStore, key: str) -> AsyncIterator[bytes]:
    async for chunk in store.get(key):
        yield chunk
