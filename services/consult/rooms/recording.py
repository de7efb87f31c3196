"""Recording of a room: one recorder per incoming track, each writing its own WebM file (VP8 video, Opus
audio) to a temporary directory; when the recording stops (or the session ends) the files are uploaded to
object storage, a row per file is written in consult.recordings, and the temporary files are removed.

A recorder reads its own sink of the track's fan-out and encodes copies of the frames in a worker thread
(the frames are shared with the senders, which read their timestamps concurrently), with timestamps from
the track itself rebased to start at zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any
from uuid import UUID

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.packet import Packet
from av.video.frame import VideoFrame

from common.storage import ObjectStore
from services.consult.rooms.media import Fanout, SinkTrack

log = logging.getLogger("telehealth.consult.rooms")

MS = Fraction(1, 1000)
VIDEO_OPTIONS = {"deadline": "realtime", "cpu-used": "16", "lag-in-frames": "0"}
VIDEO_BITRATE = 800_000
CONTENT_TYPES = {"audio": "audio/webm", "video": "video/webm"}
MAX_SILENCE_SECONDS = 10


@dataclass
class RecordedFile:
    """A finished track file, ready to upload."""

    path: Path
    kind: str
    participant_user_id: UUID
    duration_seconds: float
    started_at: datetime
    ended_at: datetime


class TrackRecorder:
    """Writes one track to ``path`` until its sink ends."""

    def __init__(self, fanout: Fanout, path: Path, participant_user_id: UUID) -> None:
        self.kind = fanout.kind
        self.path = path
        self.participant_user_id = participant_user_id
        # a recorder may fall behind for a moment (the machine is busy): keep ~2 s rather than drop
        self.sink = SinkTrack(fanout.kind, ends_with_source=True, buffer=60 if fanout.kind == "video" else 100)
        self.started_at = datetime.now(UTC)
        self.frames = 0
        self._container: Any = None
        self._stream: Any = None
        self._first_pts: int | None = None
        self._last_pts = -1
        self._samples = 0
        fanout.attach(self.sink)
        self._task = asyncio.create_task(self._run(), name=f"consult-room-recorder-{self.kind}")

    async def _run(self) -> float:
        try:
            while True:
                try:
                    frame = await self.sink.recv()
                except MediaStreamError:
                    break
                if isinstance(frame, Packet):  # a recorder's input is never in packet mode
                    continue
                for own in self._copy(frame):
                    await asyncio.to_thread(self._encode, own)
        finally:
            await asyncio.shield(asyncio.to_thread(self._close))
        return self._duration()

    def _copy(self, frame: AudioFrame | VideoFrame) -> list[AudioFrame | VideoFrame]:
        """Our own copy of ``frame`` with its time from the start of this recording; audio lost on the way
        (a gap in the track's timestamps) is filled with silence so that the file keeps the track's time."""
        if frame.pts is None or frame.time_base is None:
            return []
        if self._first_pts is None:
            self._first_pts = frame.pts
        if isinstance(frame, VideoFrame):
            pts = int((frame.pts - self._first_pts) * frame.time_base / MS)
            if pts <= self._last_pts:
                return []  # not after the previous frame (a repeat): skip it
            video = VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")
            video.pts, video.time_base = pts, MS
            self._last_pts = pts
            return [video]
        out: list[AudioFrame | VideoFrame] = []
        rate = frame.sample_rate
        at = int((frame.pts - self._first_pts) * frame.time_base * rate)
        gap = min(at - self._samples, MAX_SILENCE_SECONDS * rate)
        if gap >= frame.samples:
            out.append(self._audio(np.zeros((1, gap * len(frame.layout.channels)), dtype=np.int16), "s16",
                                   frame.layout.name, rate))
        data = frame.to_ndarray()
        out.append(self._audio(data, frame.format.name, frame.layout.name, rate))
        return out

    def _audio(self, data: Any, fmt: str, layout: str, rate: int) -> AudioFrame:
        audio = AudioFrame.from_ndarray(data, format=fmt, layout=layout)
        audio.sample_rate = rate
        audio.pts, audio.time_base = self._samples, Fraction(1, rate)
        self._samples += audio.samples
        return audio

    def _open(self, frame: AudioFrame | VideoFrame) -> None:
        self._container = av.open(str(self.path), mode="w", format="webm")
        if isinstance(frame, VideoFrame):
            stream = self._container.add_stream("libvpx", rate=30)
            stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
            stream.bit_rate = VIDEO_BITRATE
            stream.codec_context.time_base = MS
            stream.codec_context.options = dict(VIDEO_OPTIONS)
        else:
            stream = self._container.add_stream("libopus", rate=48000)
            stream.layout = "stereo"
        self._stream = stream

    def _encode(self, frame: AudioFrame | VideoFrame) -> None:
        if self._container is None:
            self._open(frame)
        elif isinstance(frame, VideoFrame) and (frame.width, frame.height) != (self._stream.width,
                                                                               self._stream.height):
            frame = frame.reformat(width=self._stream.width, height=self._stream.height)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def _close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None

    def _duration(self) -> float:
        if self.kind == "video":
            return max(self._last_pts, 0) / 1000
        return self._samples / 48000

    async def finish(self) -> RecordedFile | None:
        """End the recording of this track; the file, or None when no frame arrived."""
        self.sink.stop()
        duration = await self._task
        if self.frames == 0:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return None
        return RecordedFile(self.path, self.kind, self.participant_user_id, duration, self.started_at,
                            datetime.now(UTC))

    async def abort(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


@dataclass
class RecordingContext:
    """What a recording's rows need to know about its room."""

    session_id: UUID
    consult_id: UUID
    started_by: UUID
    consented_user_ids: list[UUID]


# Writes the rows of uploaded files: (context, recording id, [(file id, object key, file)]).
SaveRows = Callable[["RecordingContext", UUID, list[tuple[UUID, str, RecordedFile]]], Awaitable[None]]


@dataclass(frozen=True)
class RecordingChange:
    """A recording started or stopped: who (``by_user_id``; None when the room stopped it by itself) and when,
    for the audit trail and the outbox (ids only, never a patient)."""

    action: str  # "started" | "stopped"
    session_id: UUID
    consult_id: UUID
    recording_id: UUID
    by_user_id: UUID | None
    by: Any  # the actor's Principal when known (the signaling socket's), else None
    reason: str | None  # stopped: host, consent_withdrawn, participant_without_consent, session_ended, room_idle
    participant_user_ids: list[UUID]
    consented_user_ids: list[UUID]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


# Records a RecordingChange (the registry writes the audit row and the outbox event).
RecordingNotice = Callable[[RecordingChange], Awaitable[None]]


@dataclass
class RoomRecording:
    """One start..stop of a room's recording."""

    context: RecordingContext
    directory: Path
    id: UUID = field(default_factory=uuid.uuid4)
    recorders: list[TrackRecorder] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.directory = self.directory / self.id.hex
        self.directory.mkdir(parents=True, exist_ok=True)

    def record(self, fanout: Fanout, participant_user_id: UUID) -> None:
        """Start recording ``fanout``'s track (a participant's camera or microphone)."""
        name = f"{participant_user_id.hex}-{len(self.recorders):02d}-{fanout.kind}.webm"
        self.recorders.append(TrackRecorder(fanout, self.directory / name, participant_user_id))

    async def finish(self) -> list[RecordedFile]:
        """Stop every recorder; the finished files (still on disk)."""
        done = await asyncio.gather(*(r.finish() for r in self.recorders), return_exceptions=True)
        files: list[RecordedFile] = []
        for result in done:
            if isinstance(result, BaseException):
                log.error("recorder failed", exc_info=result)
            elif result is not None:
                files.append(result)
        return files

    async def upload(self, store: ObjectStore, prefix: str, save_rows: SaveRows) -> int:
        """Finish, upload every file, write the rows, remove the temporary files; the number of files kept."""
        try:
            files = await self.finish()
            uploaded: list[tuple[UUID, str, RecordedFile]] = []
            try:
                for f in files:
                    file_id = uuid.uuid4()
                    key = f"{prefix}/{self.context.consult_id}/{self.id}/{file_id}.webm"
                    await store.put(key, _read_file(f.path), content_type=CONTENT_TYPES[f.kind],
                                    length=f.path.stat().st_size)
                    uploaded.append((file_id, key, f))
                await save_rows(self.context, self.id, uploaded)
            except BaseException:
                for _, key, _ in uploaded:  # write the object, then the row; on failure remove the object
                    with contextlib.suppress(Exception):
                        await store.delete(key)
                raise
            return len(uploaded)
        finally:
            await self.discard()

    async def discard(self) -> None:
        """Stop without keeping anything (and remove the temporary directory)."""
        for r in self.recorders:
            await r.abort()
        await asyncio.to_thread(shutil.rmtree, self.directory, True)


async def _read_file(path: Path, chunk: int = 1024 * 1024) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while True:
            data = await asyncio.to_thread(fh.read, chunk)
            if not data:
                return
            yield data
