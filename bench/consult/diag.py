"""The consult service with one more route for the benchmark, ``GET /bench/diag`` (loopback, no token: this app
exists only in benchmark runs): what a room holds in memory, to tell a leak from a backlog.

``uvicorn bench.consult.diag:app``; ``BENCH_CONSULT_APP`` chooses the app it wraps (default the consult
service). Answers, over every open room: the decoded frames waiting in each received track's queue (aiortc's
``RemoteStreamTrack._queue``, unbounded) and the encoded frames waiting for each receiver's decoder thread, the
frames (or shared packets) in the slots' buffers, glibc's heap (``mallinfo2``: in use vs. free but kept), and
counts of a few object types.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import os
from collections import Counter
from typing import Any

from fastapi import FastAPI

module, _, name = os.environ.get("BENCH_CONSULT_APP", "services.consult.app:app").partition(":")
app: FastAPI = getattr(importlib.import_module(module), name)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]


def _heap() -> dict[str, float]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        m = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    mb = 1024 * 1024
    return {"heap_mb": round((m.arena + m.hblkhd) / mb, 1), "in_use_mb": round((m.uordblks + m.hblkhd) / mb, 1),
            "free_kept_mb": round(m.fordblks / mb, 1)}


@app.get("/bench/diag", include_in_schema=False)
async def diag() -> dict[str, Any]:
    rooms = getattr(app.state, "rooms", None)
    decoded = encoded = slot_frames = peers = 0
    for room in list(rooms.rooms.values()) if rooms is not None else []:
        for p in room.participants.values():
            if p.pc is None:
                continue
            peers += 1
            for t in p.pc.getTransceivers():
                track = t.receiver.track
                q = getattr(track, "_queue", None)
                decoded += q.qsize() if q is not None else 0
                dq = getattr(t.receiver, "_RTCRtpReceiver__decoder_queue", None)
                encoded += dq.qsize() if dq is not None else 0
            for slot in p.slots:
                slot_frames += sum(len(s._frames) for s in slot.tracks.values())
    kinds: Counter[str] = Counter(type(o).__name__ for o in gc.get_objects())
    wanted = ("VideoFrame", "AudioFrame", "Packet", "RtpPacket", "JitterFrame", "RTCPeerConnection", "Fanout",
              "SinkTrack", "Task", "Future", "dict", "bytes")
    return {"peer_connections": peers, "decoded_frames_queued": decoded, "encoded_frames_queued": encoded,
            "slot_frames_buffered": slot_frames, **_heap(), "objects": {k: kinds.get(k, 0) for k in wanted},
            "gc_objects": sum(kinds.values())}
