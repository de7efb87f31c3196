"""One room participant in a process of its own (so its encode/decode CPU is not the server's).

The parent starts :func:`main` with ``multiprocessing`` (spawn) and a pipe. The participant opens the room's
signaling socket through the gateway with services/consult/rooms/client.py's ``RoomClient`` (synthetic
640x480 video at 30 fps and a tone), joins (the host admits whoever waits), sends its offer and counts the
frames it decodes from every other participant. Over the pipe it reports:

- ``{"event": "opened", "t"}`` — monotonic time just before the socket was opened (CLOCK_MONOTONIC is
  system-wide on Linux, so the parent compares times of all processes);
- ``{"event": "media", "t", "participant_id"}`` — offer answered;
- ``{"event": "first", "from", "t", "width", "height"}`` — first decoded video frame from a participant
  (found by polling every 10 ms);
- ``{"event": "snapshot", "t", "video": {pid: frames}, "audio": {pid: frames}, "size": {pid: [w, h]}}`` once a
  second; ``{"event": "error", "detail"}`` if something failed.

The parent sends ``"stop"``: the participant leaves and the process ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import traceback
from typing import Any

POLL_S = 0.01


def main(cfg: dict[str, Any], conn: Any) -> None:
    if cfg.get("nice"):
        os.setpriority(os.PRIO_PROCESS, 0, cfg["nice"])  # before any thread starts: they inherit it
    try:
        asyncio.run(_run(cfg, conn))
    except Exception:
        conn.send({"event": "error", "detail": traceback.format_exc()[-2000:]})


async def _run(cfg: dict[str, Any], conn: Any) -> None:
    from services.consult.rooms.client import RoomClient, WebSocketSignal
    from services.consult.rooms.ice import offer_host_addresses

    offer_host_addresses(["127.0.0.1"])  # this process's peer offers loopback only
    conn.send({"event": "opened", "t": time.monotonic()})
    signal = await WebSocketSignal.open(cfg["url"], cfg["token"])
    client = RoomClient(signal, width=cfg["width"], height=cfg["height"], fps=cfg["fps"])
    admitter: asyncio.Task[None] | None = None
    try:
        answer = await client.join(within=60)
        if answer["type"] == "error":
            raise ConnectionError(f"join refused: {answer}")
        if answer["type"] == "waiting":
            await client.wait_for("admitted", within=120)
        if cfg.get("host"):
            admitter = asyncio.create_task(_admit_everyone(client))
        await client.start_media(within=60)
        conn.send({"event": "media", "t": time.monotonic(), "participant_id": client.participant_id})
        await _observe(client, conn)
    finally:
        if admitter is not None:
            admitter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await admitter
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 10)


async def _admit_everyone(client: Any) -> None:
    """The host's side of the waiting room: admit whoever appears in the lobby (polled every 10 ms)."""
    admitted: set[str] = set()
    while True:
        lobby = next((m for m in reversed(client.messages) if m.get("type") == "lobby"), None)
        for w in lobby["waiting"] if lobby else ():
            if w["participant_id"] not in admitted:
                admitted.add(w["participant_id"])
                await client.admit(w["participant_id"])
        await asyncio.sleep(POLL_S)


async def _observe(client: Any, conn: Any) -> None:
    first: set[str] = set()
    next_snapshot = time.monotonic()
    while True:
        now = time.monotonic()
        others = {pid for pid in client.slot_map.values() if pid}
        for pid in others - first:
            got = client.from_participant(pid, "video")
            if got.frames:
                first.add(pid)
                conn.send({"event": "first", "from": pid, "t": now, "width": got.width, "height": got.height})
        if now >= next_snapshot:
            next_snapshot += 1.0
            video = {pid: client.from_participant(pid, "video") for pid in others}
            conn.send({"event": "snapshot", "t": now, "sent": _sent(client),
                       "video": {pid: r.frames for pid, r in video.items()},
                       "audio": {pid: client.from_participant(pid, "audio").frames for pid in others},
                       "size": {pid: [r.width, r.height] for pid, r in video.items()}})
        if conn.poll():
            if conn.recv() == "stop":
                return
        if client.closed:
            conn.send({"event": "error", "detail": f"signaling closed: {client.messages[-3:]}"})
            return
        await asyncio.sleep(POLL_S)


def _sent(client: Any) -> int:
    """Frames this participant's synthetic camera handed to its encoder so far (what it sent)."""
    for t in client.pc.getTransceivers() if client.pc else []:
        track = t.sender.track
        if t.kind == "video" and track is not None:
            return int(getattr(track, "_n", 0))
    return 0
