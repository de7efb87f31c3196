"""Drive a room from Python: an aiortc participant that signals over the room's WebSocket (or an in-memory
channel), sends synthetic video (a moving pattern of the chosen size) and audio (a tone), and counts the frames
it receives from each of the others. Used by tests/consult/test_rooms*.py and by the consult benchmark.

    client = RoomClient(await WebSocketSignal.open(gateway_ws_url, token), width=640, height=480)
    await client.join()                     # "admitted" (or "waiting": the host admits with client.admit(pid))
    await client.start_media()              # offer/answer; frames flow
    await client.wait_frames(other_pid, "video", 10)
    await client.close()

ICE: the server offers 127.0.0.1 in development and test; call ``offer_host_addresses(["127.0.0.1"])``
(services/consult/rooms/ice.py) in the client's process to keep the client's traffic on loopback too.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from services.consult.rooms.ice import rtc_configuration

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
Message = dict[str, Any]


class SyntheticVideo(MediaStreamTrack):
    """Frames of ``width`` x ``height`` at ``fps`` with a moving gradient (so the encoder has work to do)."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._n = 0
        self._start: float | None = None
        y = np.arange(height, dtype=np.uint16)[:, None]
        x = np.arange(width, dtype=np.uint16)[None, :]
        self._base = ((x + y) % 256).astype(np.uint8)
        self._chroma = np.full((height // 2, width), 128, dtype=np.uint8)

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._n / self.fps - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        luma = np.roll(self._base, self._n * 4, axis=1)
        frame = VideoFrame.from_ndarray(np.vstack([luma, self._chroma]), format="yuv420p")
        frame.pts = self._n * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._n += 1
        return frame


class ToneAudio(MediaStreamTrack):
    """20 ms frames of a 440 Hz tone, 48 kHz mono s16."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._samples = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        count = AUDIO_RATE // 50
        wait = self._start + self._samples / AUDIO_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (np.arange(count) + self._samples) / AUDIO_RATE
        pcm = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._samples += count
        return frame


class WebSocketSignal:
    """The room's signaling WebSocket (``websockets`` client), token in the ``bearer`` subprotocol."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, token: str) -> WebSocketSignal:
        import websockets

        ws = await websockets.connect(url, subprotocols=["bearer", token],  # type: ignore[list-item]
                                      max_size=2**20, open_timeout=10)
        return cls(ws)

    async def send(self, message: Message) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self) -> Message | None:
        try:
            data = await self.ws.recv()
        except Exception:
            return None
        parsed: Message = json.loads(data)
        return parsed

    async def close(self, code: int = 1000) -> None:
        await self.ws.close(code)

    def abort(self) -> None:
        """Drop the connection without a closing handshake (a network failure)."""
        self.ws.transport.abort()


class MemorySignal:
    """One end of an in-memory socket pair (tests that run a Room in-process): ``MemorySignal.pair()``."""

    def __init__(self, inbox: asyncio.Queue[Message | None], outbox: asyncio.Queue[Message | None]) -> None:
        self._inbox, self._outbox = inbox, outbox
        self.closed = False

    @classmethod
    def pair(cls) -> tuple[MemorySignal, MemorySignal]:
        a: asyncio.Queue[Message | None] = asyncio.Queue()
        b: asyncio.Queue[Message | None] = asyncio.Queue()
        return cls(a, b), cls(b, a)

    async def send(self, message: Message) -> None:
        if self.closed:
            raise ConnectionError("closed")
        await self._outbox.put(json.loads(json.dumps(message)))

    async def receive(self) -> Message | None:
        if self.closed:
            return None
        message = await self._inbox.get()
        if message is None:
            self.closed = True
        return message

    async def close(self, code: int = 1000) -> None:
        if not self.closed:
            self.closed = True
            await self._outbox.put(None)
            await self._inbox.put(None)

    def abort(self) -> None:
        self.closed = True
        self._outbox.put_nowait(None)
        self._inbox.put_nowait(None)


@dataclass
class Received:
    """What arrived on one receive transceiver."""

    frames: int = 0
    width: int = 0
    height: int = 0
    samples: int = 0


@dataclass
class RoomClient:
    """One participant. ``slots``: receive pairs to offer (3: a room of four)."""

    signal: Any
    width: int = 320
    height: int = 240
    fps: int = 15
    send_audio: bool = True
    slots: int = 3
    messages: list[Message] = field(default_factory=list)
    received: dict[str, Received] = field(default_factory=lambda: defaultdict(Received))
    slot_map: dict[str, str | None] = field(default_factory=dict)  # mid -> participant id
    participant_id: str | None = None
    pc: RTCPeerConnection | None = None

    def __post_init__(self) -> None:
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self._consumers: list[asyncio.Task[None]] = []

    # -- signaling -------------------------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            message = await self.signal.receive()
            async with self._changed:
                if message is None:
                    self.messages.append({"type": "_closed"})
                    self._changed.notify_all()
                    return
                self.messages.append(message)
                if message.get("type") == "admitted":
                    self.participant_id = message["participant_id"]
                elif message.get("type") == "slots":
                    self.slot_map = {s["mid"]: s["participant_id"] for s in message["slots"]}
                self._changed.notify_all()

    async def send(self, message: Message) -> None:
        await self.signal.send(message)

    async def wait_for(self, kind: str, where: Callable[[Message], bool] = lambda m: True, *,
                       after: int = 0, within: float = 10.0) -> Message:
        """The first message of ``kind`` (at or after index ``after`` of ``messages``) matching ``where``."""

        def found() -> Message | None:
            return next((m for m in self.messages[after:] if m.get("type") == kind and where(m)), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None or self.closed), within)
        message = found()
        if message is None:
            raise ConnectionError(f"the socket closed while waiting for {kind}: {self.messages[-3:]}")
        return message

    @property
    def closed(self) -> bool:
        return any(m.get("type") == "_closed" for m in self.messages)

    async def join(self, *, within: float = 10.0) -> Message:
        """Send join; the ``admitted`` or ``waiting`` answer (or an ``error``)."""
        mark = len(self.messages)
        await self.send({"type": "join"})
        return await self._first_of(("admitted", "waiting", "error"), mark, within)

    async def _first_of(self, kinds: tuple[str, ...], after: int, within: float) -> Message:
        def found() -> Message | None:
            return next((m for m in self.messages[after:] if m.get("type") in kinds), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None or self.closed), within)
        message = found()
        if message is None:
            raise ConnectionError(f"the socket closed: {self.messages[-3:]}")
        return message

    async def admit(self, participant_id: str) -> None:
        await self.send({"type": "admit", "participant_id": participant_id})

    # -- media ---------------------------------------------------------------------------------------------

    async def start_media(self, *, within: float = 15.0) -> None:
        """A new peer connection: own audio+video sendrecv, ``slots`` recvonly pairs; offer and answer."""
        await self.stop_media()
        pc = RTCPeerConnection(rtc_configuration([]))  # iceServers=[], max-bundle
        self.pc = pc
        self.received.clear()
        if self.send_audio:
            pc.addTransceiver(ToneAudio(), direction="sendrecv")
        else:
            pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver(SyntheticVideo(self.width, self.height, self.fps), direction="sendrecv")
        for _ in range(self.slots):
            pc.addTransceiver("audio", direction="recvonly")
            pc.addTransceiver("video", direction="recvonly")

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)
            if mid is not None:
                self._consumers.append(asyncio.create_task(self._consume(mid, track)))

        await pc.setLocalDescription(await pc.createOffer())
        mark = len(self.messages)
        await self.send({"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await self._first_of(("answer", "error"), mark, within)
        if answer["type"] == "error":
            raise ConnectionError(f"offer refused: {answer}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def _consume(self, mid: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                got = self.received[mid]
                got.frames += 1
                if isinstance(frame, VideoFrame):
                    got.width, got.height = frame.width, frame.height
                elif isinstance(frame, AudioFrame):
                    got.samples += frame.samples

    def from_participant(self, participant_id: str, kind: str) -> Received:
        """What arrived from ``participant_id`` (by the latest slots message) on its ``kind`` slot."""
        for t in self.pc.getTransceivers() if self.pc else []:
            if t.kind == kind and t.mid is not None and self.slot_map.get(t.mid) == participant_id:
                return self.received[t.mid]
        return Received()

    async def wait_frames(self, participant_id: str, kind: str, count: int, *, within: float = 15.0) -> Received:
        """Wait until ``count`` more frames of ``kind`` from ``participant_id`` arrived; what arrived."""
        deadline = time.monotonic() + within
        start: int | None = None
        while True:
            got = self.from_participant(participant_id, kind)
            if got.frames and start is None:
                start = got.frames
            if start is not None and got.frames - start >= count:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} from {participant_id}: {got} (slots {self.slot_map})")
            await asyncio.sleep(0.05)

    async def stop_media(self) -> None:
        pc, self.pc = self.pc, None
        if pc is not None:
            await pc.close()
        for task in self._consumers:
            task.cancel()
        if self._consumers:
            await asyncio.gather(*self._consumers, return_exceptions=True)
        self._consumers.clear()

    # -- the end -------------------------------------------------------------------------------------------

    async def drop(self) -> None:
        """Vanish without a word: the peer connection and the socket are cut (a network failure)."""
        await self.stop_media()
        self.signal.abort()
        await self._stop_reader()

    async def close(self) -> None:
        """Leave politely and close everything."""
        with contextlib.suppress(Exception):
            await self.send({"type": "leave"})
        await self.stop_media()
        with contextlib.suppress(Exception):
            await self.signal.close()
        await self._stop_reader()

    async def _stop_reader(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
