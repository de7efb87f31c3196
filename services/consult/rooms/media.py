"""Fan-out of received media: each incoming track is read by one task and its frames handed to sinks.

A sink is a :class:`SinkTrack`: the outgoing track of a receive slot of another participant's peer
connection, or a recorder's input. A slot's sink lives as long as the peer connection and is moved from one
source to another (a participant leaves, another takes the slot, a participant reconnects with a new peer
connection) without touching the sender; the sender never sees its track end.

aiortc's MediaRelay is not used: its proxies cannot be moved to another source, a stopped proxy leaves a
pending ``recv()`` waiting forever (a sender's loop would hang on it), and its reader task runs until the
source ends; here every task belongs to the room and is cancelled with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

log = logging.getLogger("telehealth.consult.rooms")

Frame = AudioFrame | VideoFrame


class SinkTrack(MediaStreamTrack):
    """A track fed by a :class:`Fanout`. Video keeps only the newest frames (a slow consumer skips frames
    instead of falling behind); audio keeps up to 200 ms; ``buffer`` sets the number of frames kept (a
    recorder keeps more). ``ends_with_source``: a recorder's input ends when its source does; a slot's waits
    for the next source."""

    def __init__(self, kind: str, *, ends_with_source: bool = False, buffer: int | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.ends_with_source = ends_with_source
        self._frames: deque[Frame] = deque(maxlen=buffer or (2 if kind == "video" else 10))
        self._ready = asyncio.Event()
        self.source: Fanout | None = None
        self.frames_in = 0

    def push(self, frame: Frame) -> None:
        self._frames.append(frame)
        self.frames_in += 1
        self._ready.set()

    def source_ended(self) -> None:
        self.source = None
        if self.ends_with_source:
            self.stop()

    async def recv(self) -> Frame:
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
        self._task = asyncio.create_task(self._run(), name=f"consult-room-fanout-{owner}-{track.kind}")

    def attach(self, sink: SinkTrack) -> None:
        if sink.source is not None and sink.source is not self:
            sink.source.detach(sink)
        sink.source = self
        self.sinks.add(sink)

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
                for sink in tuple(self.sinks):
                    sink.push(frame)
        except MediaStreamError:
            pass
        finally:
            self.ended.set()
            for sink in tuple(self.sinks):
                self.detach(sink)
                sink.source_ended()

    async def close(self) -> None:
        """Stop reading; sinks are detached (a recorder's input ends)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
