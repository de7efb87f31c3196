"""The consult's chat (docs/consult.md "Chat"): text and files between the two sides, persisted before
anyone hears of them, fanned out through Redis pub/sub so any consult process delivers any message.

Reading (history, files, the live socket) is for whoever may see the consult (access.visible_consult);
posting is for its participants (access.require_participant: requester, consultant, invitees) while the
consult is open. Every message is written (row, and for files the object first) and committed, then
published on ``consult:chat:<consult id>``; each socket of the consult, in whatever process, subscribes there.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import asyncpg
import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict
from redis.asyncio.client import PubSub

from common.audit import AuditEntry, write
from common.auth import Principal
from common.config import ServiceSettings
from common.db import Database
from common.errors import Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge
from common.storage import ObjectStore
from services.consult import access
from services.consult import repository_chat as repo
from services.consult.schemas import ConsultRow
from services.consult.states import FINAL

log = logging.getLogger("telehealth.consult.chat")
CHANNEL_PREFIX = "consult:chat:"
MAX_TEXT = 4000
CHUNK = 1024 * 1024
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


class ChatSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONSULT_CHAT_", extra="ignore", case_sensitive=False)

    # Largest file in the chat (the platform's body limit, 8 MiB by default, caps it as well).
    max_file_bytes: int = Field(default=5 * 1024 * 1024, ge=1)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT)


class ChatFile(BaseModel):
    name: str
    content_type: str
    size_bytes: int
    sha256: str


class Message(BaseModel):
    id: UUID
    consult_id: UUID
    author_id: UUID
    author_name: str
    kind: str = Field(description="text or file")
    text: str
    file: ChatFile | None = None
    created_at: datetime


class MessagePage(BaseModel):
    items: list[Message] = Field(description="oldest first")
    next_before: UUID | None = Field(description="pass as ?before= for older messages; null at the start")


class Upload(Protocol):
    """What a multipart file part offers (starlette's UploadFile)."""

    @property
    def filename(self) -> str | None: ...

    @property
    def content_type(self) -> str | None: ...

    async def read(self, size: int = -1) -> bytes: ...


def as_message(row: Any) -> Message:
    data = dict(row)
    file = None
    if data["kind"] == "file":
        file = ChatFile(name=data["file_name"] or "file", content_type=data["content_type"] or "",
                        size_bytes=int(data["size_bytes"] or 0), sha256=data["sha256"] or "")
    return Message(id=data["id"], consult_id=data["consult_id"], author_id=data["author_id"],
                   author_name=data["author_name"], kind=data["kind"], text=data["text"], file=file,
                   created_at=data["created_at"])


def channel(consult_id: UUID) -> str:
    return f"{CHANNEL_PREFIX}{consult_id}"


def wire(message: Message, client_id: str | None = None) -> bytes:
    """The broadcast form: ``{"type": "message", <the message>}`` (``client_id`` echoed for the sender)."""
    body: dict[str, Any] = {"type": "message", **message.model_dump(mode="json")}
    if client_id:
        body["client_id"] = client_id
    return orjson.dumps(body)


async def publish(redis: aioredis.Redis, message: Message, client_id: str | None = None) -> None:
    """Tell every socket of the consult; the message is already stored, so a failure only delays it (the
    history has it)."""
    try:
        await redis.publish(channel(message.consult_id), wire(message, client_id))
    except Exception:
        log.warning("publishing a chat message failed", extra={"message_id": str(message.id)})


# Published on the consult's channel when who may use its chat changed (the consult ended, a participant was
# removed, the consultant changed): every socket checks its own access again (api_chat.py).
ACCESS_CHANGED = b'{"type":"access_changed"}'


async def announce_access_change(redis: aioredis.Redis, consult_id: UUID) -> None:
    """After the commit of a change of who may use the consult's chat; a failure leaves sockets open until
    they reconnect (and are then checked)."""
    try:
        await redis.publish(channel(consult_id), ACCESS_CHANGED)
    except Exception:
        log.warning("announcing a chat access change failed", extra={"consult_id": str(consult_id)})


async def socket_access(db: Database, principal: Principal, consult_id: UUID) -> tuple[str | None, bool]:
    """(why the socket closes, or None; whether it may post): ``access_ended`` when the caller may no longer
    see the consult, the consult's status when it ended (declined, closed, cancelled)."""
    try:
        async with db.transaction(principal) as conn:
            consult = await access.visible_consult(conn, principal, consult_id)
            if consult.status in FINAL:
                return consult.status, False
            try:
                await _poster(conn, principal, consult)
            except (Forbidden, Conflict):
                return None, False
    except NotFound:
        return "access_ended", False
    return None, True


@asynccontextmanager
async def feed(redis: aioredis.Redis, consult_id: UUID) -> AsyncIterator[PubSub]:
    """A subscription to the consult's channel (subscribed on entry)."""
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel(consult_id))
    try:
        yield pubsub
    finally:
        try:
            await pubsub.unsubscribe()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]


async def next_message(pubsub: PubSub, wait_seconds: float) -> bytes | None:
    """The next published message, or None after ``wait_seconds`` of quiet."""
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait_seconds)
    data = message.get("data") if message else None
    return bytes(data) if isinstance(data, bytes | bytearray) else None


def _audit(principal: Principal, action: str, consult_id: UUID, message_id: UUID, **detail: Any) -> AuditEntry:
    return AuditEntry.for_principal(
        principal, source="consult", action=f"consult.chat.{action}", outcome="success",
        object_type="consult_message", object_id=str(message_id),
        detail={"consult_id": str(consult_id), **{k: str(v) for k, v in detail.items()}},
    )


async def may_read(db: Database, principal: Principal, consult_id: UUID) -> bool:
    """Whether the caller may read the chat (NotFound otherwise); True when they may also post."""
    async with db.transaction(principal) as conn:
        consult = await access.visible_consult(conn, principal, consult_id)
        try:
            await _poster(conn, principal, consult)
        except (Forbidden, Conflict):
            return False
    return True


async def require_poster(db: Database, principal: Principal, consult_id: UUID) -> ConsultRow:
    """The consult, if the caller may post in its chat (404 unseen, 403 not a participant, 409 closed)."""
    async with db.transaction(principal) as conn:
        consult = await access.visible_consult(conn, principal, consult_id)
        await _poster(conn, principal, consult)
    return consult


async def _poster(conn: asyncpg.Connection, principal: Principal, consult: ConsultRow) -> None:
    """Posting: a participant of an open consult (the caller already passed visible_consult)."""
    try:
        await access.require_participant(conn, principal, consult.id)
    except NotFound:
        raise Forbidden("only the consult's participants post in its chat") from None
    if consult.status in FINAL:
        raise Conflict(f"the consult is {consult.status}: its chat is closed", code="chat_closed")


async def history(db: Database, principal: Principal, consult_id: UUID, *, before: UUID | None,
                  limit: int) -> MessagePage:
    limit = max(1, min(limit, 200))
    async with db.transaction(principal) as conn:
        await access.visible_consult(conn, principal, consult_id)
        if before is not None and not await repo.message_exists(conn, consult_id, before):
            raise Invalid("before: no such message in this consult")
        rows = await repo.history(conn, consult_id, before=before, limit=limit)
    items = [as_message(r) for r in reversed(rows)]
    return MessagePage(items=items, next_before=items[0].id if len(rows) == limit else None)


async def post_text(db: Database, redis: aioredis.Redis, principal: Principal, consult_id: UUID, text: str,
                    client_id: str | None = None) -> Message:
    """Store a text message (a participant of an open consult), then broadcast it."""
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise Invalid(f"text: 1 to {MAX_TEXT} characters")
    async with db.transaction(principal) as conn:
        consult = await access.visible_consult(conn, principal, consult_id)
        await _poster(conn, principal, consult)
        row = await repo.insert_message(conn, consult, {
            "id": uuid.uuid4(), "author_id": principal.user_id, "author_name": principal.display_name,
            "kind": "text", "text": text,
        })
        await write(conn, _audit(principal, "message", consult_id, row["id"]))
    message = as_message(row)
    await publish(redis, message, client_id)
    return message


def _file_name(raw: str | None) -> str:
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] or "file"


def _media_type(raw: str | None) -> str:
    value = (raw or "").split(";", 1)[0].strip().lower()
    return value if _MEDIA_TYPE.match(value) else "application/octet-stream"


async def post_file(db: Database, store: ObjectStore, redis: aioredis.Redis, principal: Principal,
                    consult_id: UUID, upload: Upload, settings: ChatSettings | None = None) -> Message:
    """Store a file (object first, streamed in chunks, then the row; the object is removed if the row
    fails), then broadcast it. 413 beyond CONSULT_CHAT_MAX_FILE_BYTES."""
    limit = (settings or ChatSettings()).max_file_bytes
    consult = await require_poster(db, principal, consult_id)
    message_id = uuid.uuid4()
    key = f"consult/{consult.facility_id}/{consult_id}/chat/{message_id}"
    digest = hashlib.sha256()
    size = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal size
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"chat files are limited to {limit} bytes")
            digest.update(chunk)
            yield chunk

    content_type = _media_type(upload.content_type)
    try:
        await store.put(key, chunks(), content_type=content_type)
        if size == 0:
            raise Invalid("file: the upload is empty")
        async with db.transaction(principal) as conn:
            consult = await access.visible_consult(conn, principal, consult_id)
            await _poster(conn, principal, consult)
            row = await repo.insert_message(conn, consult, {
                "id": message_id, "author_id": principal.user_id, "author_name": principal.display_name,
                "kind": "file", "text": "", "file_key": key, "file_name": _file_name(upload.filename),
                "content_type": content_type, "size_bytes": size, "sha256": digest.hexdigest(),
            })
            await write(conn, _audit(principal, "file", consult_id, message_id, size_bytes=size))
    except BaseException:
        with contextlib.suppress(Exception):  # the sweeper reconciles what is left
            await store.delete(key)
        raise
    message = as_message(row)
    await publish(redis, message)
    return message


async def file_of(db: Database, principal: Principal, consult_id: UUID, message_id: UUID) -> dict[str, Any]:
    """(key, name, content type, size) of a file message of a consult the caller may see."""
    async with db.transaction(principal) as conn:
        await access.visible_consult(conn, principal, consult_id)
        row = await repo.message_file(conn, consult_id, message_id)
        if row is None:
            raise NotFound("no such file in this consult")
        await write(conn, _audit(principal, "download", consult_id, message_id))
    return dict(row)
