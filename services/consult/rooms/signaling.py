"""The signaling protocol of a room (docs/consult.md "Signaling protocol"), independent of the socket: a
:class:`SignalChannel` gives JSON messages in and out; :func:`serve` handles one socket until it closes."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from services.consult.rooms.room import Participant, Room, RoomError, RoomUser

log = logging.getLogger("telehealth.consult.rooms")

MAX_SDP_CHARS = 64 * 1024


class SignalChannel(Protocol):
    async def receive(self) -> dict[str, Any] | None:
        """The next message, or None when the socket closed."""
        ...

    async def send(self, message: dict[str, Any]) -> None: ...

    async def close(self, code: int = 1000) -> None: ...


async def serve(channel: SignalChannel, room: Room, user: RoomUser) -> None:
    """Handle one participant's socket until it closes or they leave; then their media is released."""
    participant: Participant | None = None
    try:
        while True:
            message = await channel.receive()
            if message is None:
                return
            kind = message.get("type") if isinstance(message, dict) else None
            try:
                async with room.lock:
                    if kind == "join":
                        participant = await room.join(user, channel)
                    elif participant is None or participant.channel is not channel:
                        raise RoomError("not_joined", "send join first")
                    else:
                        await handle(room, participant, channel, message)
            except RoomError as exc:
                await channel.send({"type": "error", "code": exc.code, "detail": exc.detail})
                if exc.code == "ended":
                    return
            if kind == "leave":
                return
    finally:
        if participant is not None and not room.closed:
            async with room.lock:
                await room.leave(participant, channel)


async def handle(room: Room, p: Participant, channel: SignalChannel, message: dict[str, Any]) -> None:
    """One message of a joined participant (the room lock is held)."""
    kind = message.get("type")
    if kind == "offer":
        sdp = message.get("sdp")
        if not isinstance(sdp, str) or not sdp or len(sdp) > MAX_SDP_CHARS:
            raise RoomError("bad_message", "offer needs an sdp string")
        answer = await room.offer(p, sdp)
        await channel.send({"type": "answer", "sdp": answer})
        await room.rewire()  # fills the new peer connection's slots and sends "slots" to whoever's changed
    elif kind == "candidate":
        pass  # the server's answer carries all its candidates; the offer carries the client's
    elif kind == "admit":
        await room.admit(p, str(message.get("participant_id")))
    elif kind == "deny":
        await room.deny(p, str(message.get("participant_id")))
    elif kind == "media":
        await room.set_media(p, _flag(message, "audio", p.audio), _flag(message, "video", p.video),
                             _flag(message, "screen", p.screen))
    elif kind == "record_consent":
        await room.consent(p, _flag(message, "consent", False))
    elif kind == "record":
        await room.record(p, str(message.get("action")))
    elif kind == "leave":
        await room.leave(p, channel)
    else:
        raise RoomError("bad_message", f"unknown message type: {str(kind)[:40]}")


def _flag(message: dict[str, Any], name: str, default: bool) -> bool:
    value = message.get(name, default)
    return value if isinstance(value, bool) else default
