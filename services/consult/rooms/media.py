"""Fan-out of received media: each incoming track is read by one task and its frames handed to sinks.

A sink is a :class:`SinkTrack`: the outgoing track of a receive slot of another participant's peer
connection, or a recorder's input. A slot's sink lives as long as the peer connection and is moved from one
source to another (a participant leaves, another takes the slot, a participant reconnects with a new peer
connection) without touching the sender; the sender never sees its track end.

aiortc's MediaRelay is not used: its proxies cannot be moved to another source, a stopped proxy leaves a
pending ``recv()`` waiting forever (a sender's loop would hang on it), and its reader task runs until the
source ends; here every task belongs to the room and is cancelled with it.

Encode once per source (``CONSULT_ENCODE_ONCE``, shared_encoder.py): a video slot whose sender negotiated VP8
is put in packet mode (:meth:`SinkTrack.use_packets`); its source then encodes each frame once and every such
slot gets the same packet. Other slots and recorders get decoded frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.audio.frame import AudioFrame
from av.packet import Packet
from av.video.frame import VideoFrame

from services.consult.rooms.shared_encoder import SharedEncoder

log = logging.getLogger("telehealth.consult.rooms")

Frame = AudioFrame | VideoFrame
# Packets a slot in packet mode keeps; a sender further behind than this drops them all and waits for the
# keyframe it asks for (a gap in a VP8 inter-frame stream cannot be decoded).
PACKET_BUFFER = 30


class SinkTrack(MediaStreamTrack):
    """A track fed by a :class:`Fanout`. Video keeps only the newest frames (a slow consumer skips frames
    instead of falling behind); audio keeps up to 200 ms; ``buffer`` sets the number of frames kept (a
    recorder keeps more). ``ends_with_source``: a recorder's input ends when its source does; a slot's waits
    for the next source."""

    def __init__(self, kind: str, *, ends_with_source: bool = False, buffer: int | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.ends_with_source = ends_with_source
        self._frames: deque[Frame | Packet[Any]] = deque(maxlen=buffer or (2 if kind == "video" else 10))
        self._ready = asyncio.Event()
        self.source: Fanout | None = None
        self.frames_in = 0
        self.packets = False  # packet mode: gets its source's shared VP8 packets (use_packets)
        self.packets_dropped = 0
        self._need_keyframe = True

    def use_packets(self) -> None:
        """From now on take encoded VP8 packets from the source's shared encoder instead of frames."""
        self.packets = True
        self._frames = deque()
        self._need_keyframe = True

    def restart_stream(self) -> None:
        """New content (attached to a source): nothing of the previous stream; wait for a keyframe."""
        self._frames.clear()
        self._need_keyframe = True
        self.request_keyframe()

    def request_keyframe(self) -> None:
        if self.source is not None:
            self.source.request_keyframe()

    def push_packet(self, packet: Packet[Any], keyframe: bool) -> None:
        if self._need_keyframe and not keyframe:
            return
        if len(self._frames) >= PACKET_BUFFER:  # the sender fell behind: drop the backlog, restart at a keyframe
            self.packets_dropped += len(self._frames)
            self._frames.clear()
            if not keyframe:
                self._need_keyframe = True
                self.request_keyframe()
                return
        self._need_keyframe = False
        self._frames.append(packet)
        self.frames_in += 1
        self._ready.set()

    def push(self, frame: Frame) -> None:
        self._frames.append(frame)
        self.frames_in += 1
        self._ready.set()

    def source_ended(self) -> None:
        self.source = None
        if self.ends_with_source:
            self.stop()

    async def recv(self) -> Frame | Packet[Any]:
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        if self.source is not None:
            self.source.detach(self)
        super().stop()
        self._frames.clear()
        self._ready.set()  # wakes a pending recv(), which then raises MediaStreamError


class Fanout:
    """Reads one received track and pushes every frame to the attached sinks."""

    def __init__(self, track: MediaStreamTrack, *, owner: str) -> None:
        self.track = track
        self.kind = track.kind
        self.owner = owner  # the participant id, for logs
        self.sinks: set[SinkTrack] = set()
        self.frames = 0
        self.ended = asyncio.Event()
        self.encoder: SharedEncoder | None = None  # created when a slot in packet mode is first attached
        self._task = asyncio.create_task(self._run(), name=f"consult-room-fanout-{owner}-{track.kind}")

    def attach(self, sink: SinkTrack) -> None:
        if sink.source is not None and sink.source is not self:
            sink.source.detach(sink)
        sink.source = self
        self.sinks.add(sink)
        if sink.packets and self.kind == "video":
            if self.encoder is None:
                self.encoder = SharedEncoder(self.owner, self._packet_sinks)
            sink.restart_stream()

    def request_keyframe(self) -> None:
        if self.encoder is not None:
            self.encoder.request_keyframe()

    def _packet_sinks(self) -> list[SinkTrack]:
        return [s for s in self.sinks if s.packets]

    def detach(self, sink: SinkTrack) -> None:
        self.sinks.discard(sink)
        if sink.source is self:
            sink.source = None

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.track.recv()
                self.frames += 1
                if not isinstance(frame, AudioFrame | VideoFrame):
                    continue
                encode = False
                for sink in tuple(self.sinks):
                    if sink.packets:
                        encode = True
                    else:
                        sink.push(frame)
                if encode and self.encoder is not None and isinstance(frame, VideoFrame):
                    self.encoder.submit(frame)
        except MediaStreamError:
            pass
        finally:
            self.ended.set()
            for sink in tuple(self.sinks):
                self.detach(sink)
                sink.source_ended()

    async def close(self) -> None:
        """Stop reading; sinks are detached (a recorder's input ends); the shared encoder is closed."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        encoder, self.encoder = self.encoder, None
        if encoder is not None:
            await encoder.close()
