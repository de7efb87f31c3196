"""Real-time alert feeds over Redis pub/sub, per facility, for any service (ECG critical values, imaging
critical findings): publish a message on a facility's channel; a WebSocket subscribes to the channels of every
facility its caller may see, sends a snapshot, then each message passed through a per-receiver filter, and a
heartbeat when quiet. Services keep their own alert rows, rules and acknowledgement; this is the delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from uuid import UUID

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from starlette.websockets import WebSocket, WebSocketDisconnect


def channel(prefix: str, facility_id: UUID) -> str:
    return f"{prefix}{facility_id}"


async def publish(redis: aioredis.Redis, prefix: str, facility_id: UUID, message: bytes) -> int:
    """Publish on the facility's channel; the number of subscribers that got it."""
    return int(await redis.publish(channel(prefix, facility_id), message))


@asynccontextmanager
async def subscription(redis: aioredis.Redis, prefix: str, facilities: Iterable[UUID]) -> AsyncIterator[PubSub]:
    """Subscribed (on entry) to the channels of ``facilities``."""
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(*(channel(prefix, f) for f in sorted(facilities, key=str)))
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
    if message is None:
        return None
    data = message.get("data")
    return bytes(data) if isinstance(data, bytes | bytearray) else None


async def serve(ws: WebSocket, pubsub: PubSub, snapshot: Callable[[], Awaitable[str]],
                personalise: Callable[[bytes], bytes | None], heartbeat_seconds: float = 25.0) -> None:
    """Run an accepted socket: the snapshot, then each message ``personalise`` keeps, a ``heartbeat`` when
    quiet, until the client goes away. Subscribe before taking the snapshot so nothing falls in between."""
    await ws.send_text(await snapshot())
    closed = asyncio.create_task(_until_closed(ws))
    quiet = 0.0
    try:
        while not closed.done():
            message = await next_message(pubsub, 1.0)
            mine = personalise(message) if message else None
            if mine:
                quiet = 0.0
                await ws.send_text(mine.decode())
                continue
            quiet += 1.0
            if quiet >= heartbeat_seconds:
                quiet = 0.0
                await ws.send_text('{"type":"heartbeat"}')
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        closed.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await closed


async def _until_closed(ws: WebSocket) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
