"""A video room: the participants of one consult session, its waiting room and host, one peer connection per
participant, the fan-out of each participant's audio and video into the receive slots of the others, and the
recording (docs/consult.md "Video rooms" and "Signaling protocol").

Every method is called with ``room.lock`` held (signaling.py takes it per message), so the room's state
changes one message at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription

from common.storage import ObjectStore
from services.consult.rooms.ice import rtc_configuration
from services.consult.rooms.media import Fanout, SinkTrack
from services.consult.rooms.recording import (
    RecordingChange,
    RecordingContext,
    RecordingNotice,
    RoomRecording,
    SaveRows,
)
from services.consult.rooms.settings import RoomSettings
from services.consult.rooms.shared_encoder import forward_keyframe_requests, negotiated_codecs, prefer_vp8

log = logging.getLogger("telehealth.consult.rooms")

KINDS = ("audio", "video")


class RoomError(Exception):
    """Refused: answered to the sender as ``{"type": "error", "code", "detail"}``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class Channel(Protocol):
    """One participant's signaling socket."""

    async def send(self, message: dict[str, Any]) -> None: ...

    async def close(self, code: int = 1000) -> None: ...


@dataclass(frozen=True)
class RoomUser:
    """Who is joining (already checked to take part in the session)."""

    user_id: UUID
    display_name: str
    principal: Any = field(default=None, compare=False)  # common.auth.Principal, for the audit trail


@dataclass
class Slot:
    """A pair of receive transceivers (audio, video) of one participant's peer connection, carrying one other
    participant's media (``participant_id``; None: empty)."""

    tracks: dict[str, SinkTrack]
    senders: dict[str, RTCRtpSender]
    mids: dict[str, str]
    participant_id: str | None = None


@dataclass
class Participant:
    participant_id: str
    user: RoomUser
    host: bool
    order: int
    state: str = "waiting"  # waiting | admitted | left
    admitted_once: bool = False
    channel: Channel | None = None
    pc: RTCPeerConnection | None = None
    sources: dict[str, Fanout] = field(default_factory=dict)
    slots: list[Slot] = field(default_factory=list)
    slots_sent: list[tuple[str, str, str | None]] | None = None
    audio: bool = True
    video: bool = True
    screen: bool = False
    consented: bool = False

    @property
    def admitted(self) -> bool:
        return self.state == "admitted"

    def public(self) -> dict[str, Any]:
        return {"participant_id": self.participant_id, "user_id": str(self.user.user_id),
                "display_name": self.user.display_name, "host": self.host, "audio": self.audio,
                "video": self.video, "screen": self.screen, "consented": self.consented}


@dataclass
class RoomServices:
    """What a room uses outside itself."""

    settings: RoomSettings
    store: ObjectStore | None
    save_rows: SaveRows | None
    recording_dir: Path
    on_change: Callable[[Room], None] = lambda room: None  # the registry's idle bookkeeping
    on_recording: RecordingNotice | None = None  # audit + outbox of recording start/stop (the registry's)


class Room:
    """One session's room; created by the registry on the first join."""

    def __init__(self, session_id: UUID, consult_id: UUID, host_user_id: UUID | None,
                 services: RoomServices) -> None:
        self.session_id = session_id
        self.consult_id = consult_id
        self.host_user_id = host_user_id
        self.services = services
        self.lock = asyncio.Lock()
        self.participants: dict[str, Participant] = {}
        self.recording: RoomRecording | None = None
        self.closed = False
        self._by_user: dict[UUID, Participant] = {}
        self._order = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- who is here ----------------------------------------------------------------------------------

    @property
    def admitted(self) -> list[Participant]:
        return sorted((p for p in self.participants.values() if p.admitted), key=lambda p: p.order)

    @property
    def waiting(self) -> list[Participant]:
        return sorted((p for p in self.participants.values() if p.state == "waiting" and p.channel),
                      key=lambda p: p.order)

    @property
    def host(self) -> Participant | None:
        return next((p for p in self.participants.values() if p.host), None)

    @property
    def empty(self) -> bool:
        return not any(p.channel is not None for p in self.participants.values())

    def participant_of(self, user_id: UUID) -> Participant | None:
        return self._by_user.get(user_id)

    # -- signaling actions ------------------------------------------------------------------------------

    async def join(self, user: RoomUser, channel: Channel) -> Participant:
        """Enter: the host (and anyone admitted before in this session) is admitted at once, others wait."""
        if self.closed:
            raise RoomError("ended", "the session has ended")
        p = self._by_user.get(user.user_id)
        if p is None:
            self._order += 1
            is_host = user.user_id == self.host_user_id or (self.host_user_id is None and self.host is None)
            p = Participant(uuid.uuid4().hex, user, is_host, self._order)
            self.participants[p.participant_id] = p
            self._by_user[user.user_id] = p
        elif p.channel is not None and p.channel is not channel:  # a second socket of the same person wins
            old = p.channel
            p.channel = None
            await self._send_to(old, {"type": "error", "code": "replaced", "detail": "joined from another socket"})
            with contextlib.suppress(Exception):
                await old.close(4000)
        p.channel = channel
        if p.host or p.admitted_once:
            await self._admit(p)
        else:
            p.state = "waiting"
            await self._send(p, {"type": "waiting"})
            await self._send_lobby()
        self.services.on_change(self)
        return p

    async def admit(self, by: Participant, participant_id: str) -> None:
        self._require_host(by)
        p = self._waiting_one(participant_id)
        await self._admit(p)
        await self._send_lobby()

    async def deny(self, by: Participant, participant_id: str) -> None:
        self._require_host(by)
        p = self._waiting_one(participant_id)
        p.state = "left"
        channel, p.channel = p.channel, None
        if channel is not None:
            await self._send_to(channel, {"type": "error", "code": "denied", "detail": "the host did not admit you"})
            with contextlib.suppress(Exception):
                await channel.close(4003)
        await self._send_lobby()
        self.services.on_change(self)

    async def offer(self, p: Participant, sdp: str) -> str:
        """Negotiate ``p``'s (new) peer connection; the answer's SDP."""
        if not p.admitted:
            raise RoomError("not_admitted", "wait until the host admits you")
        await self._close_media(p)  # a new offer is a new peer connection (aiortc has no ICE restart)
        try:
            description = SessionDescription.parse(sdp)
        except Exception as exc:
            raise RoomError("bad_offer", f"the offer is not valid SDP: {exc}") from None
        own: dict[str, str] = {}
        receive: dict[str, list[str]] = {"audio": [], "video": []}
        for m in description.media:
            if m.kind not in KINDS or m.rtp.muxId is None:
                continue
            if m.kind not in own and m.direction in ("sendrecv", "sendonly"):
                own[m.kind] = m.rtp.muxId
            elif m.direction in ("recvonly", "sendrecv"):
                receive[m.kind].append(m.rtp.muxId)

        pc = RTCPeerConnection(rtc_configuration(self.services.settings.ice_servers))
        p.pc = pc
        encode_once = self.services.settings.encode_once
        if encode_once:
            prefer_vp8(pc, description)
        wanted = dict(own)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            transceiver = next((t for t in pc.getTransceivers() if t.receiver.track is track), None)
            if transceiver is None or wanted.get(track.kind) != transceiver.mid or p.pc is not pc:
                return
            p.sources[track.kind] = Fanout(track, owner=p.participant_id)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "failed" and p.pc is pc:
                log.info("peer connection failed", extra={"participant": p.participant_id})

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            by_mid = {t.mid: t for t in pc.getTransceivers()}
            pairs = max(len(receive["audio"]), len(receive["video"]))
            pairs = min(pairs, self.services.settings.room_max_participants - 1)
            for i in range(pairs):
                slot = Slot(tracks={}, senders={}, mids={})
                for kind in KINDS:
                    if i < len(receive[kind]) and (t := by_mid.get(receive[kind][i])) is not None:
                        t.direction = "sendonly"
                        sink = SinkTrack(kind)
                        t.sender.replaceTrack(sink)
                        slot.tracks[kind], slot.senders[kind], slot.mids[kind] = sink, t.sender, receive[kind][i]
                p.slots.append(slot)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
            codecs = negotiated_codecs(pc.localDescription.sdp) if encode_once else {}
            for slot in p.slots:  # VP8 senders send their source's shared packets (shared_encoder.py)
                if "video" in slot.tracks and codecs.get(slot.mids["video"]) == "video/vp8":
                    slot.tracks["video"].use_packets()
                    forward_keyframe_requests(slot.senders["video"], slot.tracks["video"].request_keyframe)
        except RoomError:
            raise
        except Exception as exc:
            await self._close_media(p)
            raise RoomError("bad_offer", f"the offer could not be answered: {exc}") from None
        if self.recording is not None and p.consented:
            for fanout in p.sources.values():
                self.recording.record(fanout, p.user.user_id)
        return str(pc.localDescription.sdp)  # the caller sends it, then calls rewire()

    async def set_media(self, p: Participant, audio: bool, video: bool, screen: bool) -> None:
        p.audio, p.video, p.screen = audio, video, screen
        await self._send_participants()

    async def consent(self, p: Participant, consent: bool) -> None:
        p.consented = consent
        if not consent and self.recording is not None and p.admitted:
            await self._stop_recording(reason="consent_withdrawn", by=p.user)
        await self._send_participants()

    async def record(self, by: Participant, action: str) -> None:
        self._require_host(by)
        if action == "start":
            if self.recording is not None:
                raise RoomError("recording", "the recording is running already")
            if self.services.store is None or self.services.save_rows is None:
                raise RoomError("unavailable", "recording is not available on this server")
            missing = [p.user.display_name for p in self.admitted if not p.consented]
            if missing:
                raise RoomError("consent_required",
                                "everyone in the room must consent to recording first: " + ", ".join(missing))
            context = RecordingContext(self.session_id, self.consult_id, by.user.user_id,
                                       [p.user.user_id for p in self.admitted])
            recording = RoomRecording(context, self.services.recording_dir)
            try:  # audited before anything is recorded: no recording without its audit row
                await self._notify_recording("started", recording, by.user, None, strict=True)
            except Exception:
                await recording.discard()
                raise RoomError("unavailable", "the recording could not be audited; try again") from None
            self.recording = recording
            for p in self.admitted:
                for fanout in p.sources.values():
                    self.recording.record(fanout, p.user.user_id)
            await self._broadcast(self._recording_message())
        elif action == "stop":
            if self.recording is None:
                raise RoomError("not_recording", "nothing is being recorded")
            await self._stop_recording(reason="host", by=by.user)
        else:
            raise RoomError("bad_message", "record action must be start or stop")

    async def leave(self, p: Participant, channel: Channel | None = None) -> None:
        """``p`` left (or its socket closed): its peer connection is closed; it may join again."""
        if channel is not None and p.channel is not channel:
            return  # an old socket of someone who reconnected
        was_admitted = p.admitted
        p.channel = None
        p.state = "left"
        await self._close_media(p)
        if was_admitted:
            await self.rewire()
            await self._send_participants()
        else:
            await self._send_lobby()
        self.services.on_change(self)

    # -- the end -------------------------------------------------------------------------------------

    async def end(self) -> None:
        """The session ended: tell everyone, then release everything."""
        if self.closed:
            return
        await self._broadcast({"type": "ended"}, everyone=True)
        await self.release("session_ended")

    async def release(self, reason: str = "session_ended") -> None:
        """Close every peer connection, fan-out and sink; finish (upload) a running recording; close sockets."""
        self.closed = True
        if self.recording is not None:
            await self._stop_recording(announce=False, reason=reason)
        for p in self.participants.values():
            await self._close_media(p)
            channel, p.channel = p.channel, None
            if channel is not None:
                with contextlib.suppress(Exception):
                    await channel.close(1000)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- internals ------------------------------------------------------------------------------------

    def _require_host(self, p: Participant) -> None:
        if not p.host or not p.admitted:
            raise RoomError("not_host", "only the host may do this")

    def _waiting_one(self, participant_id: Any) -> Participant:
        p = self.participants.get(str(participant_id))
        if p is None or p.state != "waiting" or p.channel is None:
            raise RoomError("not_waiting", "nobody with that id is waiting")
        return p

    async def _admit(self, p: Participant) -> None:
        if not p.admitted and len(self.admitted) >= self.services.settings.room_max_participants:
            raise RoomError("room_full", "the room is full")
        p.state = "admitted"
        p.admitted_once = True
        if self.recording is not None and not p.consented:
            await self._stop_recording(reason="participant_without_consent")
        await self._send(p, {"type": "admitted", "participant_id": p.participant_id, "host": p.host,
                             "participants": [q.public() for q in self.admitted],
                             "recording": self._recording_message()})
        await self._send_participants()
        if p.host:
            await self._send_lobby()

    async def rewire(self) -> None:
        """Give every admitted participant's slots the media of the others (stable: a slot keeps its person
        while they stay), and tell whoever's slots changed."""
        admitted = self.admitted
        for q in admitted:
            if not q.slots:
                continue
            others = [p for p in admitted if p is not q]
            present = {p.participant_id for p in others}
            for slot in q.slots:
                if slot.participant_id not in present:
                    slot.participant_id = None
            taken = {s.participant_id for s in q.slots}
            for p in others:
                if p.participant_id not in taken:
                    free = next((s for s in q.slots if s.participant_id is None), None)
                    if free is not None:
                        free.participant_id = p.participant_id
            for slot in q.slots:
                source = self.participants.get(slot.participant_id or "")
                for kind, sink in slot.tracks.items():
                    want = source.sources.get(kind) if source is not None else None
                    if sink.source is want:
                        continue
                    if sink.source is not None:
                        sink.source.detach(sink)
                    if want is not None:
                        want.attach(sink)
                        slot.senders[kind]._send_keyframe()  # new content: start with a full picture
            mapping = [(s.mids.get(k, ""), k, s.participant_id) for s in q.slots for k in KINDS if k in s.mids]
            if mapping != q.slots_sent:
                q.slots_sent = mapping
                await self._send(q, {"type": "slots", "slots": [
                    {"mid": mid, "kind": kind, "participant_id": pid,
                     "display_name": self.participants[pid].user.display_name if pid else None}
                    for mid, kind, pid in mapping]})

    async def _close_media(self, p: Participant) -> None:
        pc, p.pc = p.pc, None
        sources, p.sources = p.sources, {}
        slots, p.slots = p.slots, []
        p.slots_sent = None
        if pc is not None:
            with contextlib.suppress(Exception):
                await pc.close()
        for slot in slots:
            for sink in slot.tracks.values():
                sink.stop()
        for fanout in sources.values():
            await fanout.close()

    def _recording_message(self) -> dict[str, Any]:
        return {"type": "recording", "active": self.recording is not None,
                "recording_id": str(self.recording.id) if self.recording else None}

    async def _stop_recording(self, *, reason: str, announce: bool = True, by: RoomUser | None = None) -> None:
        recording, self.recording = self.recording, None
        if recording is None:
            return
        if announce:
            message = self._recording_message()
            if reason != "host":
                message["reason"] = reason
            await self._broadcast(message)
        await self._notify_recording("stopped", recording, by, reason)
        store, save_rows = self.services.store, self.services.save_rows
        assert store is not None and save_rows is not None
        self._spawn(recording.upload(store, self.services.settings.recording_prefix, save_rows))

    async def _notify_recording(self, action: str, recording: RoomRecording, by: RoomUser | None,
                                reason: str | None, *, strict: bool = False) -> None:
        """Tell the registry (audit row, outbox event); a failed stop notice is logged, not raised."""
        notice = self.services.on_recording
        if notice is None:
            return
        change = RecordingChange(
            action=action, session_id=self.session_id, consult_id=self.consult_id, recording_id=recording.id,
            by_user_id=by.user_id if by else None, by=by.principal if by else None, reason=reason,
            participant_user_ids=[p.user.user_id for p in self.admitted],
            consented_user_ids=[p.user.user_id for p in self.admitted if p.consented])
        try:
            await notice(change)
        except Exception:
            if strict:
                raise
            log.exception("recording notice failed", extra={"session": str(self.session_id)})

    def _spawn(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("room task failed", extra={"session": str(self.session_id)})

        task = asyncio.create_task(run(), name=f"consult-room-{self.session_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, p: Participant, message: dict[str, Any]) -> None:
        if p.channel is not None:
            await self._send_to(p.channel, message)

    @staticmethod
    async def _send_to(channel: Channel, message: dict[str, Any]) -> None:
        try:
            await channel.send(message)
        except Exception:  # a socket that went away: its reader ends the participant's turn
            log.debug("send to a closed socket")

    async def _broadcast(self, message: dict[str, Any], *, everyone: bool = False) -> None:
        for p in list(self.participants.values()):
            if p.admitted or (everyone and p.channel is not None):
                await self._send(p, message)

    async def _send_participants(self) -> None:
        await self._broadcast({"type": "participants", "participants": [p.public() for p in self.admitted]})

    async def _send_lobby(self) -> None:
        host = self.host
        if host is not None and host.admitted:
            await self._send(host, {"type": "lobby", "waiting": [
                {"participant_id": p.participant_id, "user_id": str(p.user.user_id),
                 "display_name": p.user.display_name} for p in self.waiting]})
