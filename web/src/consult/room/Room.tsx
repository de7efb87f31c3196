/**
 * The video room: the participants' grid (own preview + one tile per remote participant from `slots`),
 * controls (mute, camera, screen sharing, leave), the waiting room / the host's admit-deny list, recording
 * consent and the host's record start/stop with a red REC mark, the chat beside the video, the consult's
 * attachments openable next to the call, and a visible "重新连接中" while it reconnects after a drop.
 */
import { useEffect, useRef, useState } from "react";
import { useUser } from "../../auth/useSession";
import { useI18n } from "../../i18n";
import { endSession, type Attachment, type Consult } from "../api";
import { ChatPanel } from "../chat/ChatPanel";
import { AttachmentView } from "../detail/AttachmentView";
import { useRoom, type RoomApi, type RoomParticipant } from "./useRoom";

interface Props {
  consult: Consult;
  sessionId: string;
  stream: MediaStream | null;
  iceServers: RTCIceServer[];
  onExit: () => void;
}

export function Room({ consult, sessionId, stream, iceServers, onExit }: Props) {
  const { t } = useI18n();
  const tr = t.consult.room;
  const room = useRoom(sessionId, stream, iceServers);
  const [side, setSide] = useState<"chat" | "materials" | "people">("chat");
  const [material, setMaterial] = useState<Attachment | null>(null);
  const drop = useRef(room.drop);
  drop.current = room.drop;

  // "consult-room-drop" on the window cuts the connection as a network drop would (the reconnection path,
  // exercised by the browser tests)
  useEffect(() => {
    const onDrop = () => drop.current();
    window.addEventListener("consult-room-drop", onDrop);
    return () => window.removeEventListener("consult-room-drop", onDrop);
  }, []);

  if (room.phase === "denied" || room.phase === "ended" || room.phase === "left" || room.phase === "failed") {
    const text =
      room.phase === "failed" ? (tr.errors[room.error?.code ?? ""] ?? room.error?.detail ?? tr.errors.not_found) : tr[room.phase];
    return (
      <section className="panel cs-room-final" data-testid="room-final" data-phase={room.phase}>
        <p>{text}</p>
        <div className="cs-actions-row">
          {room.phase === "left" || room.phase === "failed" ? (
            <button type="button" className="btn btn-primary" onClick={room.rejoin} data-testid="room-rejoin">
              {tr.rejoin}
            </button>
          ) : null}
          <button type="button" className="btn btn-secondary" onClick={onExit}>
            {tr.backToConsult}
          </button>
        </div>
      </section>
    );
  }

  if (room.phase === "waiting" || room.phase === "connecting") {
    return (
      <section className="panel cs-waiting" data-testid="room-waiting" data-phase={room.phase}>
        <div className="cs-waiting-video">
          <LocalVideo stream={stream} />
        </div>
        <div>
          <p className="cs-waiting-title">
            <span className="spinner" aria-hidden="true" /> {room.phase === "waiting" ? tr.waiting : tr.connecting}
          </p>
          {room.phase === "waiting" ? <p className="muted">{tr.waitingHint}</p> : null}
          <button type="button" className="btn btn-secondary" onClick={() => (room.leave(), onExit())}>
            {tr.leave}
          </button>
        </div>
      </section>
    );
  }

  return (
    <div className={`cs-room${material ? " with-material" : ""}`} data-testid="room" data-phase={room.phase} data-host={room.host}>
      <div className="cs-room-stage">
        {room.phase === "reconnecting" ? (
          <div className="cs-reconnecting" role="status" data-testid="room-reconnecting">
            <span className="spinner" aria-hidden="true" /> {tr.reconnecting}
          </div>
        ) : null}
        {room.recording.active ? (
          <div className="cs-rec" data-testid="room-rec">
            <span className="cs-rec-dot" /> REC · {tr.rec}
          </div>
        ) : null}
        <VideoGrid room={room} stream={stream} />
        <Controls room={room} consult={consult} sessionId={sessionId} onExit={onExit} />
      </div>
      {material ? (
        <section className="panel cs-material" data-testid="room-material">
          <header className="cs-panel-header">
            <h2>
              {t.consult.kinds[material.kind]} · <span className="muted small">{material.label ?? material.ref}</span>
            </h2>
            <button type="button" className="btn btn-ghost btn-small" onClick={() => setMaterial(null)}>
              ✕ {tr.closeMaterial}
            </button>
          </header>
          <AttachmentView attachment={material} />
        </section>
      ) : null}
      <aside className="cs-room-side">
        <div className="tabs" role="tablist">
          {(["chat", "materials", "people"] as const).map((k) => (
            <button key={k} type="button" role="tab" className={`tab${side === k ? " active" : ""}`} onClick={() => setSide(k)} data-testid={`room-tab-${k}`}>
              {k === "chat" ? tr.chat : k === "materials" ? tr.materials : tr.participants}
              {k === "people" && room.host && room.lobby.length ? <span className="badge cs-lobby-count">{room.lobby.length}</span> : null}
            </button>
          ))}
        </div>
        {room.host && room.lobby.length > 0 && side !== "people" ? <Lobby room={room} /> : null}
        {side === "chat" ? <ChatPanel consultId={consult.id} compact /> : null}
        {side === "materials" ? (
          <section className="panel" data-testid="room-materials">
            {consult.attachments.length === 0 ? (
              <p className="muted">{t.consult.detail.noAttachments}</p>
            ) : (
              <ul className="cs-attach-list">
                {consult.attachments.map((a) => (
                  <li key={`${a.kind}:${a.ref}`}>
                    <span className="badge badge-muted">{t.consult.kinds[a.kind]}</span>
                    <span className="cs-attach-label">{a.label ?? a.ref}</span>
                    <button type="button" className="btn btn-secondary btn-small" onClick={() => setMaterial(a)} data-testid="room-open-material" data-kind={a.kind}>
                      {a.kind === "ecg_recording" ? t.consult.detail.openEcg : t.consult.detail.openStudy}
                    </button>
                  </li>
                ))}
              </ul>
            )}
          </section>
        ) : null}
        {side === "people" ? (
          <>
            {room.host ? <Lobby room={room} /> : null}
            <People room={room} />
          </>
        ) : null}
      </aside>
    </div>
  );
}

function LocalVideo({ stream, testId = "local-video" }: { stream: MediaStream | null; testId?: string }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    if (ref.current && ref.current.srcObject !== stream) ref.current.srcObject = stream;
  }, [stream]);
  return <video ref={ref} autoPlay playsInline muted className="cs-video mirror" data-testid={testId} />;
}

function RemoteMedia({ stream, participantId }: { stream: MediaStream; participantId: string }) {
  const video = useRef<HTMLVideoElement>(null);
  const audio = useRef<HTMLAudioElement>(null);
  useEffect(() => {
    if (video.current && video.current.srcObject !== stream) {
      video.current.srcObject = stream;
      void video.current.play().catch(() => undefined);
    }
    if (audio.current && audio.current.srcObject !== stream) {
      audio.current.srcObject = stream;
      void audio.current.play().catch(() => undefined);
    }
  }, [stream]);
  return (
    <>
      <video ref={video} autoPlay playsInline muted className="cs-video" data-testid="remote-video" data-participant={participantId} />
      <audio ref={audio} autoPlay data-testid="remote-audio" />
    </>
  );
}

function VideoGrid({ room, stream }: { room: RoomApi; stream: MediaStream | null }) {
  const { t } = useI18n();
  const tr = t.consult.room;
  const user = useUser();
  const byId = new Map(room.participants.map((p) => [p.participant_id, p]));
  const mine = room.me ? byId.get(room.me) : undefined;
  const tiles = room.feeds.length + 1;
  return (
    <div className={`cs-grid cs-grid-${Math.min(4, Math.max(2, tiles))}`} data-testid="room-grid">
      <div className="cs-tile own" data-testid="tile-own">
        <LocalVideo stream={stream} />
        {!room.media.video && !room.media.screen ? <div className="cs-video-off">{tr.camOff}</div> : null}
        <TileLabel name={`${user.display_name}（${tr.you}）`} p={mine} local={room.media} host={room.host} />
      </div>
      {room.feeds.map((f) => {
        const p = byId.get(f.participantId);
        return (
          <div key={f.participantId} className="cs-tile" data-testid="tile-remote" data-participant={f.participantId}>
            <RemoteMedia stream={f.stream} participantId={f.participantId} />
            {p && p.video === false && !p.screen ? <div className="cs-video-off">{tr.camOff}</div> : null}
            <TileLabel name={p?.display_name ?? f.displayName} p={p} />
          </div>
        );
      })}
      {room.feeds.length === 0 ? (
        <div className="cs-tile empty" data-testid="tile-empty">
          <span className="muted">{tr.emptySlot}</span>
        </div>
      ) : null}
    </div>
  );
}

function TileLabel({ name, p, local, host }: { name: string; p?: RoomParticipant; local?: { audio: boolean; video: boolean; screen: boolean }; host?: boolean }) {
  const { t } = useI18n();
  const tr = t.consult.room;
  const audio = local ? local.audio : p?.audio !== false;
  const screen = local ? local.screen : Boolean(p?.screen);
  return (
    <div className="cs-tile-label">
      <span>{name}</span>
      {(host ?? p?.host) ? <span className="badge cs-host">{tr.host}</span> : null}
      {!audio ? <span className="badge cs-muted-badge">{tr.muted}</span> : null}
      {screen ? <span className="badge badge-muted">{tr.sharing}</span> : null}
    </div>
  );
}

function Controls({ room, consult, sessionId, onExit }: { room: RoomApi; consult: Consult; sessionId: string; onExit: () => void }) {
  const { t } = useI18n();
  const tr = t.consult.room;
  const [shareError, setShareError] = useState<string | null>(null);
  const everyoneConsented = room.participants.length > 0 && room.participants.every((p) => p.consented);
  const user = useUser();
  const isConsultant = consult.consultant_id === user.id;
  return (
    <div className="cs-controls" data-testid="room-controls">
      <button type="button" className={`btn ${room.media.audio ? "btn-secondary" : "btn-danger"}`} onClick={room.toggleAudio} data-testid="room-mute" aria-pressed={!room.media.audio}>
        {room.media.audio ? tr.mute : tr.unmute}
      </button>
      <button type="button" className={`btn ${room.media.video ? "btn-secondary" : "btn-danger"}`} onClick={room.toggleVideo} data-testid="room-camera" aria-pressed={!room.media.video}>
        {room.media.video ? tr.cameraOff : tr.cameraOn}
      </button>
      <button
        type="button"
        className="btn btn-secondary"
        onClick={() => {
          setShareError(null);
          (room.media.screen ? room.stopShare() : room.startShare()).catch((err: unknown) => setShareError(String(err)));
        }}
        data-testid="room-share"
      >
        {room.media.screen ? tr.stopShare : tr.share}
      </button>
      <label className="cs-check cs-consent-check" title={tr.recordConsent}>
        <input type="checkbox" checked={room.consented} onChange={(e) => room.setRecordConsent(e.target.checked)} data-testid="room-record-consent" />
        <span>{tr.recordConsent}</span>
      </label>
      {room.host ? (
        room.recording.active ? (
          <button type="button" className="btn btn-danger" onClick={() => room.record("stop")} data-testid="room-record-stop">
            ■ {tr.recordStop}
          </button>
        ) : (
          <button
            type="button"
            className="btn btn-secondary"
            disabled={!everyoneConsented}
            title={everyoneConsented ? undefined : tr.recordNeedsConsent}
            onClick={() => room.record("start")}
            data-testid="room-record-start"
          >
            ● {tr.recordStart}
          </button>
        )
      ) : null}
      <span className="cs-controls-spacer" />
      {room.host && isConsultant ? (
        <button
          type="button"
          className="btn btn-ghost"
          onClick={() => {
            void endSession(sessionId).finally(() => {
              room.leave();
              onExit();
            });
          }}
          data-testid="room-end"
        >
          {tr.end}
        </button>
      ) : null}
      <button type="button" className="btn btn-danger" onClick={() => (room.leave(), onExit())} data-testid="room-leave">
        {tr.leave}
      </button>
      {room.error && room.error.code !== "webrtc" ? (
        <p className="form-error small cs-room-error" role="alert" data-testid="room-error">
          {tr.errors[room.error.code] ?? room.error.detail ?? room.error.code}
        </p>
      ) : null}
      {shareError ? <p className="form-error small cs-room-error">{shareError}</p> : null}
      {room.host && !everyoneConsented && !room.recording.active ? <p className="muted small cs-room-note">{tr.recordNeedsConsent}</p> : null}
    </div>
  );
}

function Lobby({ room }: { room: RoomApi }) {
  const { t } = useI18n();
  const tr = t.consult.room;
  return (
    <section className="panel cs-lobby" data-testid="room-lobby">
      <h3>
        {tr.lobby} <span className="muted small">({room.lobby.length})</span>
      </h3>
      {room.lobby.length === 0 ? (
        <p className="muted small">{tr.lobbyEmpty}</p>
      ) : (
        <ul>
          {room.lobby.map((p) => (
            <li key={p.participant_id} data-testid="lobby-entry">
              <span>{p.display_name}</span>
              <button type="button" className="btn btn-primary btn-small" onClick={() => room.admit(p.participant_id)} data-testid="lobby-admit">
                {tr.admit}
              </button>
              <button type="button" className="btn btn-ghost btn-small" onClick={() => room.deny(p.participant_id)} data-testid="lobby-deny">
                {tr.deny}
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function People({ room }: { room: RoomApi }) {
  const { t } = useI18n();
  const tr = t.consult.room;
  return (
    <section className="panel" data-testid="room-people">
      <h3>{tr.participants}</h3>
      <ul className="cs-people">
        {room.participants.map((p) => (
          <li key={p.participant_id}>
            <strong>{p.display_name}</strong>
            {p.host ? <span className="badge cs-host">{tr.host}</span> : null}
            <span className="muted small">
              {p.audio === false ? ` · ${tr.muted}` : ""}
              {p.video === false ? ` · ${tr.camOff}` : ""}
              {p.screen ? ` · ${tr.sharing}` : ""} · {p.consented ? tr.consented : tr.notConsented}
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}
