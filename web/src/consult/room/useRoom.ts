/**
 * One participant's side of a video room (docs/consult.md "Signaling protocol"): the signaling socket, the
 * one peer connection to the server (own audio + video sendrecv, then three recvonly audio+video pairs that
 * the server fills per the `slots` message), the lobby for the host, media state, recording, and automatic
 * reconnection after a drop: a new socket, `join` (re-admitted at once), a new peer connection and offer.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { signalSocketPath, socketUrl } from "../api";

export type Phase = "connecting" | "waiting" | "in_room" | "reconnecting" | "denied" | "ended" | "left" | "failed";

export interface RoomParticipant {
  participant_id: string;
  user_id?: string;
  display_name: string;
  host?: boolean;
  audio?: boolean;
  video?: boolean;
  screen?: boolean;
  consented?: boolean;
}

export interface SlotInfo {
  mid: string;
  kind: "audio" | "video";
  participant_id: string | null;
  display_name?: string | null;
}

export interface RemoteFeed {
  participantId: string;
  displayName: string;
  stream: MediaStream;
  hasVideo: boolean;
  hasAudio: boolean;
}

const RECV_PAIRS = 3;
const BACKOFF_MS = [500, 1_000, 2_000, 4_000, 8_000];
const FINAL: Phase[] = ["denied", "ended", "left", "failed"];

function waitForIce(pc: RTCPeerConnection, ms: number): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, ms);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

export function useRoom(sessionId: string, local: MediaStream | null, iceServers: RTCIceServer[]) {
  const [phase, setPhase] = useState<Phase>("connecting");
  const [host, setHost] = useState(false);
  const [me, setMe] = useState<string | null>(null);
  const [participants, setParticipants] = useState<RoomParticipant[]>([]);
  const [lobby, setLobby] = useState<RoomParticipant[]>([]);
  const [slots, setSlots] = useState<SlotInfo[]>([]);
  const [feeds, setFeeds] = useState<RemoteFeed[]>([]);
  const [recording, setRecording] = useState<{ active: boolean; recording_id?: string | null }>({ active: false });
  const [error, setError] = useState<{ code: string; detail?: string } | null>(null);
  const [media, setMedia] = useState({ audio: true, video: true, screen: false });
  const [consented, setConsented] = useState(false);
  const [attempts, setAttempts] = useState(0);

  const ws = useRef<WebSocket | null>(null);
  const pc = useRef<RTCPeerConnection | null>(null);
  const phaseRef = useRef<Phase>("connecting");
  const slotsRef = useRef<SlotInfo[]>([]);
  const streams = useRef(new Map<string, MediaStream>());
  const screenTrack = useRef<MediaStreamTrack | null>(null);
  const mediaRef = useRef(media);
  const consentRef = useRef(consented);
  const retry = useRef<ReturnType<typeof setTimeout> | null>(null);
  const dropTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const attempt = useRef(0);
  const stopped = useRef(false);
  mediaRef.current = media;
  consentRef.current = consented;

  const go = (p: Phase) => {
    phaseRef.current = p;
    setPhase(p);
  };

  const send = useCallback((msg: Record<string, unknown>) => {
    const socket = ws.current;
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg));
  }, []);

  /** Rebuild the remote feeds from the slots and the receive transceivers (same MediaStream per person). */
  const rebuildFeeds = useCallback(() => {
    const conn = pc.current;
    const byMid = new Map<string, MediaStreamTrack>();
    for (const tr of conn?.getTransceivers() ?? []) if (tr.mid !== null) byMid.set(tr.mid, tr.receiver.track);
    const people = new Map<string, { name: string; video?: MediaStreamTrack; audio?: MediaStreamTrack }>();
    for (const s of slotsRef.current) {
      if (!s.participant_id) continue;
      const entry = people.get(s.participant_id) ?? { name: s.display_name ?? "" };
      const track = byMid.get(s.mid);
      if (track) entry[s.kind] = track;
      if (s.display_name) entry.name = s.display_name;
      people.set(s.participant_id, entry);
    }
    const next: RemoteFeed[] = [];
    for (const [id, p] of people) {
      let stream = streams.current.get(id);
      if (!stream) {
        stream = new MediaStream();
        streams.current.set(id, stream);
      }
      const wanted = [p.video, p.audio].filter((x): x is MediaStreamTrack => Boolean(x));
      for (const tr of stream.getTracks()) if (!wanted.includes(tr)) stream.removeTrack(tr);
      for (const tr of wanted) if (!stream.getTracks().includes(tr)) stream.addTrack(tr);
      next.push({ participantId: id, displayName: p.name, stream, hasVideo: Boolean(p.video), hasAudio: Boolean(p.audio) });
    }
    for (const id of [...streams.current.keys()]) if (!people.has(id)) streams.current.delete(id);
    setFeeds(next);
  }, []);

  const closePeer = () => {
    const conn = pc.current;
    pc.current = null;
    if (conn) {
      conn.onconnectionstatechange = null;
      conn.ontrack = null;
      conn.close();
    }
    streams.current.clear();
    setFeeds([]);
  };

  const scheduleReconnect = useCallback(() => {
    if (stopped.current || FINAL.includes(phaseRef.current)) return;
    go("reconnecting");
    closePeer();
    const old = ws.current;
    ws.current = null;
    if (old) {
      old.onclose = null;
      old.onmessage = null;
      old.close();
    }
    const delay = BACKOFF_MS[Math.min(attempt.current, BACKOFF_MS.length - 1)] ?? 8_000;
    attempt.current += 1;
    setAttempts(attempt.current);
    if (retry.current) clearTimeout(retry.current);
    retry.current = setTimeout(() => void connectRef.current(), delay);
  }, []);

  const startPeer = useCallback(async () => {
    closePeer();
    const conn = new RTCPeerConnection({ iceServers });
    pc.current = conn;
    const audio = local?.getAudioTracks()[0] ?? null;
    const camera = local?.getVideoTracks()[0] ?? null;
    const video = screenTrack.current ?? camera;
    const streamsOpt = local ? [local] : [];
    conn.addTransceiver(audio ?? "audio", { direction: "sendrecv", streams: streamsOpt });
    conn.addTransceiver(video ?? "video", { direction: "sendrecv", streams: streamsOpt });
    for (let i = 0; i < RECV_PAIRS; i++) {
      conn.addTransceiver("audio", { direction: "recvonly" });
      conn.addTransceiver("video", { direction: "recvonly" });
    }
    conn.ontrack = () => rebuildFeeds();
    conn.onconnectionstatechange = () => {
      if (pc.current !== conn) return;
      const state = conn.connectionState;
      if (dropTimer.current) clearTimeout(dropTimer.current);
      dropTimer.current = null;
      if (state === "failed") scheduleReconnect();
      else if (state === "disconnected") dropTimer.current = setTimeout(() => pc.current === conn && scheduleReconnect(), 4_000);
      else if (state === "connected") attempt.current = 0;
    };
    const offer = await conn.createOffer();
    await conn.setLocalDescription(offer);
    await waitForIce(conn, 3_000);
    if (pc.current !== conn) return;
    send({ type: "offer", sdp: conn.localDescription?.sdp ?? offer.sdp });
  }, [iceServers, local, rebuildFeeds, scheduleReconnect, send]);

  const onMessage = useCallback(
    (raw: string) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return;
      }
      switch (msg.type) {
        case "waiting":
          go("waiting");
          break;
        case "lobby":
          setLobby((msg.waiting as RoomParticipant[] | undefined) ?? []);
          break;
        case "admitted": {
          setHost(Boolean(msg.host));
          setMe((msg.participant_id as string | undefined) ?? null);
          if (Array.isArray(msg.participants)) setParticipants(msg.participants as RoomParticipant[]);
          if (msg.recording && typeof msg.recording === "object") setRecording(msg.recording as { active: boolean });
          go("in_room");
          setError(null);
          // tell the room what we send and whether we consent, then offer
          const m = mediaRef.current;
          send({ type: "media", audio: m.audio, video: m.video, screen: m.screen });
          if (consentRef.current) send({ type: "record_consent", consent: true });
          void startPeer().catch((err: unknown) => setError({ code: "webrtc", detail: String(err) }));
          break;
        }
        case "answer":
          pc.current
            ?.setRemoteDescription({ type: "answer", sdp: msg.sdp as string })
            .then(rebuildFeeds)
            .catch((err: unknown) => setError({ code: "webrtc", detail: String(err) }));
          break;
        case "candidate":
          if (msg.candidate) void pc.current?.addIceCandidate(msg as unknown as RTCIceCandidateInit).catch(() => undefined);
          break;
        case "slots":
          slotsRef.current = (msg.slots as SlotInfo[] | undefined) ?? [];
          setSlots(slotsRef.current);
          rebuildFeeds();
          break;
        case "participants":
          setParticipants((msg.participants as RoomParticipant[] | undefined) ?? []);
          break;
        case "recording":
          setRecording({ active: Boolean(msg.active), recording_id: (msg.recording_id as string | null | undefined) ?? null });
          break;
        case "denied":
          go("denied");
          break;
        case "ended":
          go("ended");
          break;
        case "error": {
          const code = String(msg.code ?? "error");
          setError({ code, detail: typeof msg.detail === "string" ? msg.detail : undefined });
          if (code === "denied") go("denied");
          else if (["room_full", "forbidden", "not_found", "session_ended"].includes(code)) go(code === "session_ended" ? "ended" : "failed");
          break;
        }
        default:
          break;
      }
    },
    [rebuildFeeds, send, startPeer],
  );

  const connect = useCallback(async () => {
    if (stopped.current) return;
    const url = await socketUrl(signalSocketPath(sessionId));
    if (stopped.current) return;
    if (!url) {
      scheduleReconnect();
      return;
    }
    let socket: WebSocket;
    try {
      socket = new WebSocket(url, []);
    } catch {
      scheduleReconnect();
      return;
    }
    ws.current = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: "join" }));
    socket.onmessage = (e) => {
      if (typeof e.data === "string") onMessage(e.data);
    };
    socket.onclose = (e) => {
      if (ws.current !== socket) return;
      ws.current = null;
      if (e.code === 4403 || e.code === 4404 || e.code === 1008) {
        setError({ code: e.code === 4404 ? "not_found" : "forbidden", detail: e.reason });
        go("failed");
        closePeer();
        return;
      }
      scheduleReconnect();
    };
  }, [sessionId, onMessage, scheduleReconnect]);

  const connectRef = useRef(connect);
  connectRef.current = connect;

  useEffect(() => {
    stopped.current = false;
    void connect();
    return () => {
      stopped.current = true;
      if (retry.current) clearTimeout(retry.current);
      if (dropTimer.current) clearTimeout(dropTimer.current);
      const socket = ws.current;
      ws.current = null;
      if (socket) {
        socket.onclose = null;
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "leave" }));
        socket.close(1000, "leaving");
      }
      closePeer();
    };
    // connect once per session; later changes flow through refs
  }, [sessionId]);

  // -- controls ---------------------------------------------------------------------------------------

  const announce = (next: typeof media) => {
    setMedia(next);
    send({ type: "media", ...next });
  };

  const toggleAudio = () => {
    const next = { ...mediaRef.current, audio: !mediaRef.current.audio };
    for (const tr of local?.getAudioTracks() ?? []) tr.enabled = next.audio;
    announce(next);
  };

  const toggleVideo = () => {
    const next = { ...mediaRef.current, video: !mediaRef.current.video };
    for (const tr of local?.getVideoTracks() ?? []) tr.enabled = next.video;
    announce(next);
  };

  const videoSender = () => pc.current?.getTransceivers()[1]?.sender ?? null;

  const stopShare = async () => {
    const screen = screenTrack.current;
    screenTrack.current = null;
    screen?.stop();
    await videoSender()?.replaceTrack(local?.getVideoTracks()[0] ?? null);
    announce({ ...mediaRef.current, screen: false });
  };

  const startShare = async () => {
    const display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = display.getVideoTracks()[0];
    if (!track) return;
    screenTrack.current = track;
    track.onended = () => void stopShare();
    await videoSender()?.replaceTrack(track);
    announce({ ...mediaRef.current, screen: true });
  };

  const setRecordConsent = (value: boolean) => {
    setConsented(value);
    send({ type: "record_consent", consent: value });
  };

  const leave = () => {
    go("left");
    send({ type: "leave" });
    const socket = ws.current;
    ws.current = null;
    if (socket) {
      socket.onclose = null;
      socket.close(1000, "left");
    }
    closePeer();
    if (screenTrack.current) {
      screenTrack.current.stop();
      screenTrack.current = null;
    }
  };

  const rejoin = () => {
    attempt.current = 0;
    go("connecting");
    void connect();
  };

  /** Cut the connection as a network drop would (the reconnection path; also handy for a flaky line). */
  const drop = () => {
    const socket = ws.current;
    if (socket) socket.close(4000, "dropped");
    else scheduleReconnect();
  };

  return {
    phase,
    host,
    me,
    participants,
    lobby,
    slots,
    feeds,
    recording,
    error,
    media,
    consented,
    attempts,
    screenShared: () => screenTrack.current,
    admit: (participantId: string) => send({ type: "admit", participant_id: participantId }),
    deny: (participantId: string) => send({ type: "deny", participant_id: participantId }),
    toggleAudio,
    toggleVideo,
    startShare,
    stopShare,
    setRecordConsent,
    record: (action: "start" | "stop") => send({ type: "record", action }),
    leave,
    rejoin,
    drop,
  };
}

export type RoomApi = ReturnType<typeof useRoom>;
