"""HTTP and WebSocket layer of the consult chat (thin; rules and fan-out in chat.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, WebSocket
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.websockets import WebSocketDisconnect

from common.auth import Principal, current_principal
from common.db import Database
from common.errors import AppError, Invalid, UnsupportedMediaType
from common.storage import ObjectStore
from common.ws_auth import authenticate_websocket, deny_websocket
from services.consult import chat
from services.consult.chat import Message, MessageIn, MessagePage

log = logging.getLogger("telehealth.consult.chat")
router = APIRouter(prefix="/api/consult", tags=["consult chat"])
HEARTBEAT_SECONDS = 25.0
CLOSE_CONSULT_ENDED = 4001  # the consult was declined, closed or cancelled (the history stays readable)
CLOSE_ACCESS_ENDED = 4003  # the caller may no longer see the consult (e.g. removed from it)
UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}}}
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"})


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.store
    return store


@router.get("/consults/{consult_id}/messages", response_model=MessagePage)
async def history(
    consult_id: UUID,
    request: Request,
    before: UUID | None = Query(default=None, description="a message id: only messages older than it"),
    limit: int = Query(default=50, ge=1, le=200),
    principal: Principal = Depends(current_principal),
) -> MessagePage:
    """The chat's history, oldest first; page back with ``before`` = ``next_before``."""
    return await chat.history(_db(request), principal, consult_id, before=before, limit=limit)


@router.post("/consults/{consult_id}/messages", status_code=201, response_model=Message)
async def post_message(
    consult_id: UUID, body: MessageIn, request: Request, principal: Principal = Depends(current_principal)
) -> Message:
    """Post a text message (a participant; stored, then sent to every open chat socket of the consult)."""
    return await chat.post_text(_db(request), request.app.state.redis, principal, consult_id, body.text)


@router.post("/consults/{consult_id}/messages/files", status_code=201, response_model=Message,
             openapi_extra=UPLOAD_BODY)
async def post_file(consult_id: UUID, request: Request, principal: Principal = Depends(current_principal)) -> Message:
    """Post an image or a file (multipart field ``file``; its content type is kept; 413 beyond
    CONSULT_CHAT_MAX_FILE_BYTES)."""
    await chat.require_poster(_db(request), principal, consult_id)  # 404/403 before reading the body
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("send the file as multipart/form-data in the field 'file'")
    async with request.form(max_files=1, max_fields=2) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("file: no file uploaded (multipart field 'file')")
        return await chat.post_file(_db(request), _store(request), request.app.state.redis, principal, consult_id,
                                    upload)


async def _stream(store: ObjectStore, key: str) -> AsyncIterator[bytes]:
    async for chunk in store.get(key):
        yield chunk


@router.get("/consults/{consult_id}/messages/{message_id}/file")
async def get_file(
    consult_id: UUID, message_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Response:
    """The file of a message, byte for byte, with the content type it was uploaded with."""
    found = await chat.file_of(_db(request), principal, consult_id, message_id)
    disposition = "inline" if found["content_type"] in INLINE_TYPES else "attachment"
    name = str(found["file_name"] or "file")
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return StreamingResponse(
        _stream(_store(request), found["file_key"]), media_type=found["content_type"],
        headers={"Content-Length": str(found["size_bytes"]), "X-Content-Type-Options": "nosniff",
                 "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
                 "ETag": f'"{found["sha256"]}"', "Cache-Control": "private, max-age=3600"},
    )


@router.websocket("/consults/{consult_id}/chat")
async def chat_socket(ws: WebSocket, consult_id: UUID) -> None:
    """Live chat of a consult (token: ``access_token`` query or the ``["bearer", token]`` subprotocol).
    On connect: ``{"type": "ready", "can_post"}``; then every new message as ``{"type": "message", ...}``
    (no history: GET .../messages for that). Send ``{"type": "message", "text", "client_id"?}`` to post
    (stored, then broadcast to every socket of the consult, yours included, with your ``client_id``);
    ``{"type": "ping"}`` answers ``pong``. Errors: ``{"type": "error", "code", "detail"}``. When the consult
    ends (declined, closed, cancelled) or you may no longer see it (removed), a last
    ``{"type": "closed", "reason": <status> | "access_ended"}`` and the socket closes (4001 / 4003)."""
    db: Database = ws.app.state.db
    try:
        principal, subprotocol = authenticate_websocket(ws)
        can_post = await chat.may_read(db, principal, consult_id)
    except AppError as exc:
        await deny_websocket(ws, exc)
        return
    ws.state.principal = principal  # the platform middleware audits the connection with it
    redis = ws.app.state.redis
    lock = asyncio.Lock()

    async def send(payload: bytes | dict[str, Any]) -> None:
        text = payload.decode() if isinstance(payload, bytes) else orjson.dumps(payload).decode()
        async with lock:
            await ws.send_text(text)

    async with chat.feed(redis, consult_id) as pubsub:  # subscribed before accepting: nothing is missed
        await ws.accept(subprotocol=subprotocol)
        await send({"type": "ready", "consult_id": str(consult_id), "can_post": can_post})
        client = asyncio.create_task(_from_client(ws, send, db, redis, principal, consult_id))
        quiet = 0.0
        try:
            while not client.done():
                data = await chat.next_message(pubsub, 1.0)
                if data == chat.ACCESS_CHANGED:
                    closing, may_post = await chat.socket_access(db, principal, consult_id)
                    if closing is not None:  # the last word, then the socket closes
                        await send({"type": "closed", "consult_id": str(consult_id), "reason": closing})
                        async with lock:
                            await ws.close(CLOSE_ACCESS_ENDED if closing == "access_ended" else CLOSE_CONSULT_ENDED)
                        break
                    if may_post != can_post:
                        can_post = may_post
                        await send({"type": "ready", "consult_id": str(consult_id), "can_post": can_post})
                    continue
                if data is not None:
                    quiet = 0.0
                    await send(data)
                    continue
                quiet += 1.0
                if quiet >= HEARTBEAT_SECONDS:
                    quiet = 0.0
                    await send({"type": "heartbeat"})
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            client.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await client


async def _from_client(ws: WebSocket, send: Any, db: Database, redis: Any, principal: Principal,
                       consult_id: UUID) -> None:
    """Read what the client sends until it goes away: post messages, answer pings."""
    while True:
        raw = await ws.receive()
        if raw["type"] == "websocket.disconnect":
            return
        try:
            msg = orjson.loads(raw.get("text") or raw.get("bytes") or b"")
        except orjson.JSONDecodeError:
            await send({"type": "error", "code": "invalid", "detail": "send JSON messages"})
            continue
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "ping":
            await send({"type": "pong"})
        elif kind == "message":
            client_id = msg.get("client_id")
            client_id = str(client_id)[:64] if client_id is not None else None
            try:
                await chat.post_text(db, redis, principal, consult_id, str(msg.get("text") or ""), client_id)
            except AppError as exc:
                await send({"type": "error", "code": exc.code, "detail": exc.detail, "client_id": client_id})
        else:
            await send({"type": "error", "code": "invalid", "detail": "unknown message type"})
