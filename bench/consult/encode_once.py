"""A prototype of "encode once per source" for the rooms, to measure it: ``uvicorn bench.consult.encode_once:app``
is the consult service with services/consult/rooms/media.py's fan-out patched at import (H2's files untouched).

Today every receive slot's sender encodes the decoded frames itself: a 3-party room decodes 3 VP8 streams and
encodes 6 (N x (N-1)). Here each video :class:`~services.consult.rooms.media.Fanout` encodes each frame once (one
VP8 encoder per source, aiortc's own settings: 500 kbps CBR, realtime) in the thread pool and hands the same
``av.Packet`` to every slot; aiortc's ``RTCRtpSender`` packetizes a packet instead of encoding when its track
returns one (``Encoder.pack``). Recorders still get decoded frames. Keyframes: when a slot is attached to a source
(room.rewire) and when a receiver asks (PLI/FIR: ``RTCRtpSender._send_keyframe``), the source's next frame is
encoded as a keyframe. A slot that falls behind by more than ``PACKET_BUFFER`` packets drops them all and asks
for a keyframe (a receiver cannot decode a gap in a VP8 inter-frame stream). Costs: all receivers of a source get
one bitrate (no per-receiver REMB adaptation; fine on a LAN, a simulcast question beyond it), and a keyframe asked
by one receiver is sent to all.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
from collections import deque
from typing import Any

import av
from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from av.video.frame import VideoFrame

from services.consult.app import app
from services.consult.rooms import media

__all__ = ["app"]

PACKET_BUFFER = 30
BITRATE = 500_000
_original_attach = media.Fanout.attach
_original_push = media.SinkTrack.push
_original_send_keyframe = RTCRtpSender._send_keyframe


class SharedVp8:
    """One VP8 encoder for one source, with aiortc's Vp8Encoder settings."""

    def __init__(self) -> None:
        self.codec: Any = None
        self.force_keyframe = True

    def encode(self, frame: VideoFrame, keyframe: bool) -> Any:
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        if self.codec is None or (frame.width, frame.height) != (self.codec.width, self.codec.height):
            c = av.CodecContext.create("libvpx", "w")
            c.width, c.height, c.bit_rate, c.pix_fmt = frame.width, frame.height, BITRATE, "yuv420p"
            c.gop_size, c.qmin, c.qmax = 3000, 2, 56
            c.options = {"bufsize": str(BITRATE), "cpu-used": "-6", "deadline": "realtime", "lag-in-frames": "0",
                         "minrate": str(BITRATE), "maxrate": str(BITRATE), "noise-sensitivity": "4",
                         "overshoot-pct": "15", "partitions": "0", "static-thresh": "1", "undershoot-pct": "100"}
            c.thread_count = 1
            self.codec = c
            keyframe = True
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        data = b"".join(bytes(p) for p in self.codec.encode(frame))
        if not data:
            return None
        packet = av.Packet(data)
        packet.pts = frame.pts
        packet.time_base = frame.time_base or fractions.Fraction(1, 90000)
        return packet


def _is_slot(sink: media.SinkTrack) -> bool:
    return sink.kind == "video" and not sink.ends_with_source


def _state(fanout: media.Fanout) -> dict[str, Any]:
    st: dict[str, Any] | None = getattr(fanout, "_encode_once", None)
    if st is None:
        st = {"encoder": SharedVp8(), "latest": None, "ready": asyncio.Event(), "task": None}
        fanout._encode_once = st  # type: ignore[attr-defined]
    return st


def request_keyframe(fanout: media.Fanout) -> None:
    if fanout.kind == "video":
        _state(fanout)["encoder"].force_keyframe = True


async def _encoder_loop(fanout: media.Fanout) -> None:
    """Encode the newest frame (older ones are skipped when the encoder falls behind) and hand the packet to
    every slot of this source."""
    st = _state(fanout)
    loop = asyncio.get_running_loop()
    enc: SharedVp8 = st["encoder"]
    while True:
        await st["ready"].wait()
        st["ready"].clear()
        frame, st["latest"] = st["latest"], None
        if frame is None:
            continue
        slots = [s for s in fanout.sinks if _is_slot(s)]
        if not slots:
            continue
        keyframe, enc.force_keyframe = enc.force_keyframe, False
        packet = await loop.run_in_executor(None, enc.encode, frame, keyframe)
        if packet is None:
            continue
        for sink in [s for s in fanout.sinks if _is_slot(s)]:
            _push_packet(sink, packet)


def _push_packet(sink: media.SinkTrack, packet: Any) -> None:
    frames: deque[Any] = sink._frames
    if frames.maxlen != PACKET_BUFFER:
        sink._frames = frames = deque(frames, maxlen=PACKET_BUFFER)
    if len(frames) == PACKET_BUFFER:  # the sender fell behind: a gap would corrupt the picture
        frames.clear()
        if sink.source is not None:
            request_keyframe(sink.source)
        return
    frames.append(packet)
    sink.frames_in += 1
    sink._ready.set()


def push(self: media.SinkTrack, frame: Any) -> None:
    """Slots of video get packets from their source's encoder loop, not frames."""
    if _is_slot(self) and isinstance(frame, VideoFrame):
        source = self.source
        if source is not None:
            st = _state(source)
            st["latest"] = frame
            st["ready"].set()
            if st["task"] is None:
                st["task"] = asyncio.create_task(_encoder_loop(source))
        return
    _original_push(self, frame)


def attach(self: media.Fanout, sink: media.SinkTrack) -> None:
    _original_attach(self, sink)
    if _is_slot(sink):
        sink._frames.clear()  # nothing of another source's stream
        request_keyframe(self)


def send_keyframe(self: RTCRtpSender) -> None:
    _original_send_keyframe(self)
    track = self.track
    if isinstance(track, media.SinkTrack) and track.source is not None:
        request_keyframe(track.source)


_original_close = media.Fanout.close


async def close(self: media.Fanout) -> None:
    st = getattr(self, "_encode_once", None)
    if st and st["task"] is not None:
        st["task"].cancel()
        with contextlib.suppress(asyncio.CancelledError, MediaStreamError, Exception):
            await st["task"]
    await _original_close(self)


media.SinkTrack.push = push  # type: ignore[method-assign]
media.Fanout.attach = attach  # type: ignore[method-assign]
media.Fanout.close = close  # type: ignore[method-assign]
RTCRtpSender._send_keyframe = send_keyframe  # type: ignore[method-assign]
