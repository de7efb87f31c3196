/**
 * The check before the room: camera preview, a microphone level meter, and the network — a round trip to
 * the consult API (which also brings the ICE servers) and a loopback RTCPeerConnection pair in this page
 * (a data channel must open). Each shows checking / pass / fail in words; entering is possible anyway.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { useI18n } from "../../i18n";
import { iceServers as fetchIceServers } from "../api";

type Check = "checking" | "pass" | "fail";

export interface PreCallResult {
  stream: MediaStream | null;
  iceServers: RTCIceServer[];
}

async function loopback(servers: RTCIceServer[], ms = 8_000): Promise<number> {
  const a = new RTCPeerConnection({ iceServers: servers });
  const b = new RTCPeerConnection({ iceServers: servers });
  const started = performance.now();
  try {
    a.onicecandidate = (e) => {
      if (e.candidate) void b.addIceCandidate(e.candidate).catch(() => undefined);
    };
    b.onicecandidate = (e) => {
      if (e.candidate) void a.addIceCandidate(e.candidate).catch(() => undefined);
    };
    const channel = a.createDataChannel("precall");
    const opened = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timeout")), ms);
      channel.onopen = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription as RTCSessionDescriptionInit);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription as RTCSessionDescriptionInit);
    await opened;
    return Math.round(performance.now() - started);
  } finally {
    a.close();
    b.close();
  }
}

export function PreCall({ onEnter, children }: { onEnter: (r: PreCallResult) => void; children?: React.ReactNode }) {
  const { t } = useI18n();
  const tp = t.consult.precall;
  const [camera, setCamera] = useState<Check>("checking");
  const [mic, setMic] = useState<Check>("checking");
  const [api, setApi] = useState<Check>("checking");
  const [rtc, setRtc] = useState<Check>("checking");
  const [rtt, setRtt] = useState<number | null>(null);
  const [servers, setServers] = useState<RTCIceServer[]>([]);
  const [stream, setStream] = useState<MediaStream | null>(null);
  const [round, setRound] = useState(0);
  const video = useRef<HTMLVideoElement>(null);
  const meter = useRef<HTMLDivElement>(null);
  const handedOver = useRef(false);

  // devices
  useEffect(() => {
    let live = true;
    let got: MediaStream | null = null;
    setCamera("checking");
    setMic("checking");
    const get = async () => {
      try {
        got = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
      } catch {
        // one of them may still work alone
        const parts = await Promise.allSettled([
          navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } }),
          navigator.mediaDevices.getUserMedia({ audio: true }),
        ]);
        const tracks = parts.flatMap((p) => (p.status === "fulfilled" ? p.value.getTracks() : []));
        got = tracks.length ? new MediaStream(tracks) : null;
      }
      if (!live) {
        got?.getTracks().forEach((tr) => tr.stop());
        return;
      }
      setStream(got);
      setCamera(got?.getVideoTracks().length ? "pass" : "fail");
      setMic(got?.getAudioTracks().length ? "pass" : "fail");
    };
    void get();
    return () => {
      live = false;
      if (got && !handedOver.current) got.getTracks().forEach((tr) => tr.stop());
    };
  }, [round]);

  useEffect(() => {
    if (video.current) video.current.srcObject = stream;
  }, [stream]);

  // the microphone level
  useEffect(() => {
    if (!stream || !stream.getAudioTracks().length) return;
    const ctx = new AudioContext();
    void ctx.resume().catch(() => undefined);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    ctx.createMediaStreamSource(stream).connect(analyser);
    const data = new Uint8Array(analyser.fftSize);
    let frame = 0;
    const tick = () => {
      analyser.getByteTimeDomainData(data);
      let sum = 0;
      for (const v of data) sum += ((v - 128) / 128) ** 2;
      const level = Math.min(1, Math.sqrt(sum / data.length) * 4);
      if (meter.current) {
        meter.current.style.width = `${Math.round(level * 100)}%`;
        meter.current.dataset.level = level.toFixed(3);
      }
      frame = requestAnimationFrame(tick);
    };
    frame = requestAnimationFrame(tick);
    return () => {
      cancelAnimationFrame(frame);
      void ctx.close();
    };
  }, [stream]);

  // the network
  const testNetwork = useCallback(() => {
    let live = true;
    setApi("checking");
    setRtc("checking");
    setRtt(null);
    const started = performance.now();
    fetchIceServers()
      .then(async (list) => {
        if (!live) return;
        setRtt(Math.round(performance.now() - started));
        setServers(list);
        setApi("pass");
        try {
          await loopback(list);
          if (live) setRtc("pass");
        } catch {
          if (live) setRtc("fail");
        }
      })
      .catch(() => {
        if (!live) return;
        setApi("fail");
        loopback([])
          .then(() => live && setRtc("pass"))
          .catch(() => live && setRtc("fail"));
      });
    return () => {
      live = false;
    };
  }, []);
  useEffect(() => testNetwork(), [testNetwork, round]);

  const checks: [string, Check, string | null][] = [
    ["camera", camera, camera === "fail" ? tp.cameraFail : null],
    ["microphone", mic, mic === "fail" ? tp.micFail : tp.micHint],
    ["api", api, api === "pass" && rtt !== null ? tp.apiRtt(rtt) : api === "fail" ? tp.apiFail : null],
    ["loopback", rtc, rtc === "fail" ? tp.loopbackFail : null],
  ];
  const labels: Record<string, string> = { camera: tp.camera, microphone: tp.microphone, api: tp.network, loopback: tp.loopback };
  const done = checks.every(([, c]) => c !== "checking");
  const allPass = checks.every(([, c]) => c === "pass");

  return (
    <section className="panel cs-precall" data-testid="consult-precall" data-done={done} data-pass={allPass}>
      <header>
        <h2>{tp.title}</h2>
        <p className="muted">{tp.subtitle}</p>
      </header>
      <div className="cs-precall-body">
        <div className="cs-precall-preview">
          <video ref={video} autoPlay playsInline muted data-testid="precall-video" />
          {camera === "fail" ? <div className="cs-video-off">{tp.cameraFail}</div> : null}
          <div className="cs-meter" aria-label={tp.microphone}>
            <div className="cs-meter-bar" ref={meter} data-testid="precall-mic-level" />
          </div>
        </div>
        <ul className="cs-checks">
          {checks.map(([key, state, note]) => (
            <li key={key} className={`cs-check-${state}`} data-testid={`precall-${key}`} data-state={state}>
              <span className="cs-check-icon" aria-hidden="true">
                {state === "pass" ? "✓" : state === "fail" ? "✕" : "…"}
              </span>
              <div>
                <strong>{labels[key]}</strong>{" "}
                <span className="cs-check-state">{state === "pass" ? tp.pass : state === "fail" ? tp.fail : tp.checking}</span>
                {note ? <div className="small muted">{note}</div> : null}
              </div>
            </li>
          ))}
        </ul>
      </div>
      <footer className="cs-actions-row cs-end">
        {children}
        <button type="button" className="btn btn-secondary" onClick={() => setRound((n) => n + 1)} disabled={!done} data-testid="precall-retest">
          {tp.retest}
        </button>
        <button
          type="button"
          className="btn btn-primary"
          disabled={!done}
          onClick={() => {
            handedOver.current = true;
            onEnter({ stream, iceServers: servers });
          }}
          data-testid="precall-enter"
        >
          {allPass || !done ? tp.enter : tp.enterAnyway}
        </button>
      </footer>
    </section>
  );
}
