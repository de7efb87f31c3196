"""Encode once per source: one VP8 encoder per received video track, whose packets every receive slot sends.

aiortc decodes every received track; without this, each receive slot's sender re-encodes the decoded frames
itself (a room of N encodes N x (N-1) streams). Here a video :class:`~services.consult.rooms.media.Fanout`
hands the newest decoded frame to its :class:`SharedEncoder`, which encodes it once (aiortc's Vp8Encoder
settings: 500 kbps CBR, realtime) on its own thread and gives the same ``av.Packet`` to every slot in packet
mode; aiortc's ``RTCRtpSender`` packetizes a packet instead of encoding when its track returns one
(``Encoder.pack``). That only works when the sender's negotiated codec is VP8: :func:`negotiated_codecs` reads
it from the answer; any other slot (e.g. H.264 to a browser) keeps decoded frames and its sender's own encoder.

Keyframes: the encoder's first frame, a slot attached to the source, a receiver's PLI/FIR
(:func:`forward_keyframe_requests`) and a slot that fell behind (its backlog dropped) make the next frame a
keyframe; a slot in packet mode skips packets until its first keyframe (a VP8 inter-frame without its
references cannot be decoded). Costs: every receiver of a source gets one bitrate (no per-receiver REMB
adaptation), and a keyframe one receiver asks for goes to all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import av
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.sdp import SessionDescription
from av.packet import Packet
from av.video.frame import VideoFrame

log = logging.getLogger("telehealth.consult.rooms")

BITRATE = 500_000  # aiortc's default bitrate for a VP8 sender
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)


def is_vp8_keyframe(data: bytes) -> bool:
    """RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame."""
    return bool(data) and not data[0] & 1


class PacketSink(Protocol):
    def push_packet(self, packet: Packet[Any], keyframe: bool) -> None: ...


class Vp8:
    """A libvpx encoder with aiortc's Vp8Encoder settings (one thread: a room has several of them)."""

    def __init__(self) -> None:
        self.codec: Any = None

    def encode(self, frame: VideoFrame, keyframe: bool) -> tuple[Packet[Any] | None, bool]:
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
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        data = b"".join(bytes(p) for p in self.codec.encode(frame))
        if not data:
            return None, False
        packet = Packet(data)
        packet.pts = frame.pts
        packet.time_base = frame.time_base or VIDEO_TIME_BASE
        return packet, is_vp8_keyframe(data)

    def close(self) -> None:
        self.codec = None


class SharedEncoder:
    """One video source's encoder: the newest frame in (older ones are skipped while an encode runs), one
    packet out to every sink ``targets()`` returns. Owns one thread; :meth:`close` releases it and the codec."""

    def __init__(self, owner: str, targets: Callable[[], Iterable[PacketSink]]) -> None:
        self.owner = owner
        self.targets = targets
        self.frames_encoded = 0
        self.keyframes = 0
        self._vp8 = Vp8()
        self._latest: VideoFrame | None = None
        self._ready = asyncio.Event()
        self._force_keyframe = True
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"consult-vp8-{owner[:8]}")
        self._task = asyncio.create_task(self._run(), name=f"consult-room-encoder-{owner}")

    def submit(self, frame: VideoFrame) -> None:
        self._latest = frame
        self._ready.set()

    def request_keyframe(self) -> None:
        self._force_keyframe = True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._ready.wait()
            self._ready.clear()
            frame, self._latest = self._latest, None
            if frame is None or not any(True for _ in self.targets()):
                continue
            keyframe, self._force_keyframe = self._force_keyframe, False
            try:
                packet, is_key = await loop.run_in_executor(self._executor, self._vp8.encode, frame, keyframe)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("shared VP8 encode failed", extra={"participant": self.owner})
                self._force_keyframe = True
                continue
            if packet is None:
                continue
            self.frames_encoded += 1
            self.keyframes += is_key
            for sink in tuple(self.targets()):
                sink.push_packet(packet, is_key)

    async def close(self) -> None:
        """Stop encoding, release the codec on the encoder's thread (after a running encode), end the thread."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(self._executor.submit(self._vp8.close))
        self._executor.shutdown(wait=True)


def negotiated_codecs(sdp: str) -> dict[str, str]:
    """mid -> the mime type (lower case) a sender of that m-line sends: the first codec of the answer's m-line
    (aiortc's sender uses ``parameters.codecs[0]``, the same list the answer is written from)."""
    out: dict[str, str] = {}
    for m in SessionDescription.parse(sdp).media:
        if m.rtp.muxId is not None and m.rtp.codecs:
            out[m.rtp.muxId] = m.rtp.codecs[0].mimeType.lower()
    return out


def prefer_vp8(pc: RTCPeerConnection, offer: SessionDescription) -> None:
    """Before ``setRemoteDescription`` of an offer: create the transceivers aiortc would create (one per audio
    and video m-line, in order, ``recvonly``; aiortc matches them to the m-lines by kind and order) so that the
    video ones can prefer VP8 over H.264 (an answerer otherwise keeps the offer's codec order)."""
    caps = RTCRtpSender.getCapabilities("video").codecs
    vp8_first = sorted(caps, key=lambda c: c.mimeType.lower() != "video/vp8")
    for m in offer.media:
        if m.kind in ("audio", "video"):
            t = pc.addTransceiver(m.kind, direction="recvonly")
            if m.kind == "video":
                t.setCodecPreferences(vp8_first)


def forward_keyframe_requests(sender: RTCRtpSender, request: Callable[[], None]) -> None:
    """Call ``request`` when this sender's receiver asks for a keyframe (PLI/FIR).

    aiortc has no public hook for it: ``RTCRtpSender._handle_rtcp_packet`` calls ``self._send_keyframe()``. This
    wraps that method on this one sender instance (the room's own receive-slot senders), not on the class;
    tests/consult/test_rooms_inprocess.py::test_pli_reaches_the_shared_encoder fails if aiortc changes it."""
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        request()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]
