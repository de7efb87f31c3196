/**
 * The ECG waveform viewer: standard 3×4 + rhythm strip (or 12×1, or one lead magnified) on a millimetre
 * grid, 25 mm/s and 10 mm/mV by default, speed and gain changes, calipers, and time navigation for long
 * records. Two stacked canvases: the paper and traces (redrawn when a setting or the signal changes) and
 * an overlay for the calipers (redrawn on every mouse move, cheaply).
 */
import { useCallback, useEffect, useMemo, useRef, useState, type MouseEvent as ReactMouseEvent } from "react";
import { useI18n } from "../../i18n";
import { ErrorState, Loading } from "../../ui/states";
import { getSignal, type SignalWindow } from "../api";
import { defaultRhythmLead, hasTwelveLeads, leadTraces, type LeadTrace } from "./leads";
import {
  FIT_MM,
  GAINS,
  SPEEDS,
  drawPaper,
  layoutPaper,
  nominalWindow,
  panelAt,
  type BeatMark,
  type Gain,
  type LayoutKind,
  type PaperSettings,
  type SignalSource,
  type Speed,
} from "./paper";

export interface EcgViewerProps {
  recordingId: string;
  fs: number;
  durationS: number;
  leadNames: string[];
  beats?: BeatMark[];
  /** Leads the analysis found unusable (noise, lead-off): their labels say so. */
  poorLeads?: string[];
  testId?: string;
}

interface Point {
  xMm: number;
  yMm: number;
}

const NO_TRACES: LeadTrace[] = [];
const FONT = '-apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", Arial, sans-serif';
/** Most samples (leads × samples) fetched at once; the service allows 2,000,000. */
const MAX_POINTS = 1_200_000;

function chunkFor(durationS: number, fs: number, leads: number): number {
  if (durationS * fs * leads <= MAX_POINTS) return durationS;
  return Math.max(20, Math.min(600, MAX_POINTS / (fs * Math.max(1, leads))));
}

export function EcgViewer({ recordingId, fs, durationS, leadNames, beats, poorLeads, testId = "ecg-viewer" }: EcgViewerProps) {
  const { t } = useI18n();
  const tv = t.ecg.viewer;
  const [layout, setLayout] = useState<LayoutKind>("3x4");
  const [speed, setSpeed] = useState<Speed>(25);
  const [gain, setGain] = useState<Gain>(10);
  const [startS, setStartS] = useState(0);
  const [lead, setLead] = useState<string>("");
  const [calipers, setCalipers] = useState(false);
  const [points, setPoints] = useState<Point[]>([]);
  const [hover, setHover] = useState<Point | null>(null);
  const [cssWidth, setCssWidth] = useState(0);
  const [signal, setSignal] = useState<{ window: SignalWindow; traces: LeadTrace[] } | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [retry, setRetry] = useState(0);
  const [drawn, setDrawn] = useState(false);

  const wrapRef = useRef<HTMLDivElement>(null);
  const paperRef = useRef<HTMLCanvasElement>(null);
  const overlayRef = useRef<HTMLCanvasElement>(null);

  const dpr = typeof window === "undefined" ? 1 : Math.max(1, Math.min(3, window.devicePixelRatio || 1));

  // the names the recording's leads will have once mapped (for the lead menu before the signal arrives)
  const traces = signal?.traces ?? NO_TRACES;
  const twelve = hasTwelveLeads(traces);
  const effectiveLayout: LayoutKind = layout === "3x4" && signal && !twelve ? "12x1" : layout;
  const currentLead = lead || defaultRhythmLead(traces);
  const windowS = Math.min(nominalWindow(effectiveLayout, speed), durationS);
  const maxStart = Math.max(0, durationS - windowS);
  const start = Math.min(startS, maxStart);

  // -- size ------------------------------------------------------------------------------------------
  useEffect(() => {
    const el = wrapRef.current;
    if (!el) return;
    const observer = new ResizeObserver((entries) => {
      const w = entries[0]?.contentRect.width ?? 0;
      setCssWidth((prev) => (Math.abs(prev - w) >= 1 ? w : prev));
    });
    observer.observe(el);
    setCssWidth(el.clientWidth);
    return () => observer.disconnect();
  }, []);

  // device pixels per mm: the paper fills the width (grid lines are snapped to whole pixels when drawn)
  const basePpm = Math.max(2, ((cssWidth - 2) * dpr) / FIT_MM);
  const ppm = effectiveLayout === "single" ? basePpm * 2 : basePpm;

  // -- signal --------------------------------------------------------------------------------------
  const chunk = chunkFor(durationS, fs, leadNames.length);
  const loaded = signal?.window;
  const loadedFrom = loaded?.startS ?? 0;
  const loadedTo = loaded ? loaded.startS + (loaded.leads[0]?.length ?? 0) / loaded.fs : -1;
  const needFrom = start;
  const needTo = Math.min(durationS, start + windowS) - 1e-6;
  const covered = loaded !== undefined && needFrom >= loadedFrom - 1e-6 && needTo <= loadedTo + 1 / fs;

  useEffect(() => {
    if (covered) return;
    const controller = new AbortController();
    const from = chunk >= durationS ? 0 : Math.max(0, Math.min(start - chunk * 0.25, durationS - chunk));
    setLoading(true);
    setLoadError(null);
    getSignal(recordingId, { startS: from, durationS: Math.min(chunk, durationS - from) }, controller.signal)
      .then((w) => {
        setSignal({ window: w, traces: leadTraces(w.leadNames, w.leads) });
        setLoading(false);
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        setLoadError(err);
        setLoading(false);
      });
    return () => controller.abort();
    // a new start refetches only when the window leaves what is loaded (covered)
  }, [recordingId, covered, chunk, durationS, retry]);

  // -- layout & drawing ----------------------------------------------------------------------------
  const settings: PaperSettings = useMemo(
    () => ({ layout: effectiveLayout, speed, gain, lead: currentLead, startS: start }),
    [effectiveLayout, speed, gain, currentLead, start],
  );
  const paper = useMemo(() => layoutPaper(settings, traces, durationS, twelve), [settings, traces, durationS, twelve]);
  const labels = useMemo(() => {
    const out: Record<string, string> = {};
    const poor = new Set(poorLeads ?? []);
    for (const tr of traces) out[tr.name] = `${tr.name}${tr.derived ? "*" : ""}${poor.has(tr.name) ? " ⚠" : ""}`;
    return out;
  }, [traces, poorLeads]);
  const source: SignalSource | null = signal ? { fs: signal.window.fs, startS: signal.window.startS, traces } : null;

  const widthPx = Math.round(paper.widthMm * ppm);
  const heightPx = Math.round(paper.heightMm * ppm);

  useEffect(() => {
    const canvas = paperRef.current;
    if (!canvas || cssWidth <= 0) return;
    canvas.width = widthPx;
    canvas.height = heightPx;
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    const t0 = performance.now();
    drawPaper(ctx, paper, covered ? source : null, { ppm, dpr, settings, labels, beats, font: FONT });
    canvas.dataset.drawMs = (performance.now() - t0).toFixed(1); // for the browser test's smoothness check
    setDrawn(covered && source !== null);
  }, [paper, signal, covered, ppm, dpr, settings, labels, beats, widthPx, heightPx, cssWidth]);

  // calipers are in paper millimetres of the current scale: a new scale starts them afresh
  useEffect(() => {
    setPoints([]);
    setHover(null);
  }, [speed, gain, effectiveLayout, start, currentLead]);

  const measurement = useMemo(() => {
    const a = points[0];
    const b = points[1] ?? (calipers && points.length === 1 ? hover : null);
    if (!a || !b) return null;
    const dtMs = (Math.abs(b.xMm - a.xMm) / speed) * 1000;
    const dmv = (a.yMm - b.yMm) / gain;
    return { dtMs, dmv, bpm: dtMs > 0 ? 60000 / dtMs : null, final: points.length === 2 };
  }, [points, hover, calipers, speed, gain]);

  useEffect(() => {
    const canvas = overlayRef.current;
    if (!canvas) return;
    canvas.width = widthPx;
    canvas.height = heightPx;
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.clearRect(0, 0, widthPx, heightPx);
    const a = points[0];
    const b = points[1] ?? (calipers && points.length === 1 ? hover : null);
    if (!a) return;
    ctx.strokeStyle = "#1565c0";
    ctx.fillStyle = "#1565c0";
    ctx.lineWidth = Math.max(1, 1.5 * dpr);
    const vline = (p: Point) => {
      const x = Math.round(p.xMm * ppm) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, 0);
      ctx.lineTo(x, heightPx);
      ctx.stroke();
    };
    const dot = (p: Point) => {
      ctx.beginPath();
      ctx.arc(p.xMm * ppm, p.yMm * ppm, 3 * dpr, 0, Math.PI * 2);
      ctx.fill();
    };
    ctx.setLineDash([]);
    vline(a);
    dot(a);
    if (!b) return;
    vline(b);
    dot(b);
    ctx.setLineDash([4 * dpr, 3 * dpr]);
    ctx.beginPath();
    ctx.moveTo(a.xMm * ppm, a.yMm * ppm);
    ctx.lineTo(b.xMm * ppm, a.yMm * ppm);
    ctx.lineTo(b.xMm * ppm, b.yMm * ppm);
    ctx.stroke();
    ctx.setLineDash([]);
    if (measurement) {
      const text = `${Math.round(measurement.dtMs)} ms · ${measurement.dmv.toFixed(2)} mV${
        measurement.bpm ? ` · ${Math.round(measurement.bpm)} bpm` : ""
      }`;
      const fontPx = Math.round(12 * dpr);
      ctx.font = `600 ${fontPx}px ${FONT}`;
      const w = ctx.measureText(text).width + 10 * dpr;
      const x = Math.min(Math.max(a.xMm, b.xMm) * ppm + 6 * dpr, widthPx - w - 2);
      const y = Math.max(2, Math.min(a.yMm, b.yMm) * ppm - fontPx - 10 * dpr);
      ctx.fillStyle = "rgba(21,101,192,0.92)";
      ctx.fillRect(x, y, w, fontPx + 8 * dpr);
      ctx.fillStyle = "#fff";
      ctx.textBaseline = "top";
      ctx.fillText(text, x + 5 * dpr, y + 4 * dpr);
    }
  }, [points, hover, calipers, ppm, dpr, widthPx, heightPx, measurement]);

  // -- interaction -----------------------------------------------------------------------------------
  const toPaper = useCallback(
    (e: ReactMouseEvent<HTMLCanvasElement>): Point => {
      const rect = e.currentTarget.getBoundingClientRect();
      const scale = widthPx / rect.width;
      return { xMm: ((e.clientX - rect.left) * scale) / ppm, yMm: ((e.clientY - rect.top) * scale) / ppm };
    },
    [widthPx, ppm],
  );

  const onClick = (e: ReactMouseEvent<HTMLCanvasElement>) => {
    const p = toPaper(e);
    if (calipers) {
      setPoints((prev) => (prev.length >= 2 ? [p] : [...prev, p]));
      return;
    }
    const panel = panelAt(paper, p.xMm, p.yMm);
    if (!panel) return;
    if (effectiveLayout === "single") {
      setLayout(twelve ? "3x4" : "12x1");
      return;
    }
    setLead(panel.lead);
    setLayout("single");
    const w = Math.min(nominalWindow("single", speed), durationS);
    const at = p.xMm >= panel.xMm ? panel.t0 + (p.xMm - panel.xMm) / speed : panel.t0;
    setStartS(Math.max(0, Math.min(durationS - w, at - w / 2)));
  };

  const onMove = (e: ReactMouseEvent<HTMLCanvasElement>) => {
    if (calipers && points.length === 1) setHover(toPaper(e));
  };

  const step = (direction: number) => setStartS(Math.max(0, Math.min(maxStart, start + direction * windowS * 0.9)));

  const leadOptions = traces.length ? traces.map((tr) => tr.name) : leadNames;
  const fmtS = (s: number) => (s >= 60 ? `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}` : `${s.toFixed(1)} s`);

  return (
    <section className="ecg-viewer" data-testid={testId}>
      <div className="ecg-toolbar" role="toolbar" aria-label={tv.toolbar}>
        <Segmented
          label={tv.layout}
          testId="viewer-layout"
          value={effectiveLayout}
          options={[
            { value: "3x4", label: tv.layout3x4, disabled: signal !== null && !twelve },
            { value: "12x1", label: tv.layout12x1 },
            { value: "single", label: tv.layoutSingle },
          ]}
          onChange={(v) => setLayout(v as LayoutKind)}
        />
        <label className="ecg-tool">
          <span>{effectiveLayout === "single" ? tv.lead : tv.rhythmLead}</span>
          <select
            data-testid="viewer-lead"
            value={currentLead}
            onChange={(e) => setLead(e.target.value)}
            disabled={effectiveLayout === "12x1"}
          >
            {leadOptions.map((name) => (
              <option key={name} value={name}>
                {labels[name] ?? name}
              </option>
            ))}
          </select>
        </label>
        <Segmented
          label={tv.speed}
          testId="viewer-speed"
          value={String(speed)}
          options={SPEEDS.map((s) => ({ value: String(s), label: `${s}` }))}
          unit="mm/s"
          onChange={(v) => setSpeed(Number(v) as Speed)}
        />
        <Segmented
          label={tv.gain}
          testId="viewer-gain"
          value={String(gain)}
          options={GAINS.map((g) => ({ value: String(g), label: `${g}` }))}
          unit="mm/mV"
          onChange={(v) => setGain(Number(v) as Gain)}
        />
        <button
          type="button"
          className={`btn btn-small ${calipers ? "btn-primary" : "btn-secondary"}`}
          aria-pressed={calipers}
          data-testid="viewer-calipers"
          onClick={() => {
            setCalipers((c) => !c);
            setPoints([]);
          }}
        >
          {tv.calipers}
        </button>
      </div>

      <div className="ecg-paper-wrap" ref={wrapRef}>
        {loadError ? <ErrorState error={loadError} onRetry={() => setRetry((r) => r + 1)} /> : null}
        {loadError && !signal ? null : (
          <div className="ecg-paper" style={{ width: widthPx / dpr, height: heightPx / dpr }}>
            <canvas
              ref={paperRef}
              className="ecg-canvas"
              style={{ width: widthPx / dpr, height: heightPx / dpr }}
              data-testid="ecg-viewer-canvas"
              data-ready={drawn ? "true" : "false"}
              data-layout={effectiveLayout}
              data-speed={speed}
              data-gain={gain}
              data-px-per-mm={(ppm / dpr).toFixed(2)}
              role="img"
              aria-label={tv.canvasLabel(speed, gain)}
            />
            <canvas
              ref={overlayRef}
              className={`ecg-overlay${calipers ? " ecg-overlay-calipers" : ""}`}
              style={{ width: widthPx / dpr, height: heightPx / dpr }}
              onClick={onClick}
              onMouseMove={onMove}
              onMouseLeave={() => setHover(null)}
              data-testid="ecg-viewer-overlay"
              title={calipers ? tv.calipersHint : effectiveLayout === "single" ? tv.unzoomHint : tv.zoomHint}
            />
            {loading && !drawn ? (
              <div className="ecg-paper-loading">
                <Loading label={tv.loading} />
              </div>
            ) : null}
          </div>
        )}
      </div>

      <div className="ecg-footer">
        <span className="ecg-scale" data-testid="viewer-scale">
          {tv.scale(speed, gain)}
        </span>
        {traces.some((tr) => tr.derived) ? <span className="muted">{tv.derivedNote}</span> : null}
        {calipers ? (
          <span className="ecg-caliper-readout" data-testid="viewer-caliper-readout" aria-live="polite">
            {measurement
              ? tv.caliperReadout(Math.round(measurement.dtMs), measurement.dmv.toFixed(2), measurement.bpm ? Math.round(measurement.bpm) : null)
              : points.length === 1
                ? tv.calipersSecond
                : tv.calipersHint}
          </span>
        ) : (
          <span className="muted">{effectiveLayout === "single" ? tv.unzoomHint : tv.zoomHint}</span>
        )}
        {durationS > windowS + 0.01 ? (
          <span className="ecg-nav">
            <button type="button" className="btn btn-secondary btn-small" onClick={() => step(-1)} disabled={start <= 0} data-testid="viewer-prev" aria-label={tv.earlier}>
              ◀
            </button>
            <input
              type="range"
              min={0}
              max={Math.round(maxStart * 10)}
              value={Math.round(start * 10)}
              onChange={(e) => setStartS(Number(e.target.value) / 10)}
              aria-label={tv.position}
              data-testid="viewer-position"
            />
            <span className="ecg-nav-time">
              {fmtS(start)} – {fmtS(start + windowS)} / {fmtS(durationS)}
            </span>
            <button type="button" className="btn btn-secondary btn-small" onClick={() => step(1)} disabled={start >= maxStart} data-testid="viewer-next" aria-label={tv.later}>
              ▶
            </button>
          </span>
        ) : null}
      </div>
    </section>
  );
}

interface SegmentedProps {
  label: string;
  testId: string;
  value: string;
  options: { value: string; label: string; disabled?: boolean }[];
  unit?: string;
  onChange: (value: string) => void;
}

function Segmented({ label, testId, value, options, unit, onChange }: SegmentedProps) {
  return (
    <div className="ecg-tool" role="group" aria-label={label} data-testid={testId}>
      <span>{label}</span>
      <div className="segmented">
        {options.map((o) => (
          <button
            key={o.value}
            type="button"
            className={o.value === value ? "active" : ""}
            aria-pressed={o.value === value}
            disabled={o.disabled}
            data-value={o.value}
            onClick={() => onChange(o.value)}
          >
            {o.label}
          </button>
        ))}
      </div>
      {unit ? <span className="muted">{unit}</span> : null}
    </div>
  );
}
