/**
 * ECG paper: where each lead goes on the millimetre grid (layout, in mm), and drawing it on a canvas.
 *
 * Everything is laid out in paper millimetres; grid lines are snapped to whole device pixels so that the
 * 1 mm grid stays crisp at any scale (each line within half a pixel of its true place). Traces are decimated per device pixel column (min and max of the samples
 * under each column, in sample order), so a 24-hour Holter window draws as fast as a 10-second ECG and
 * no QRS peak is lost.
 */
import { GRID_3X4, type LeadTrace } from "./leads";

export type LayoutKind = "3x4" | "12x1" | "single";
export const SPEEDS = [12.5, 25, 50] as const;
export const GAINS = [5, 10, 20] as const;
export type Speed = (typeof SPEEDS)[number];
export type Gain = (typeof GAINS)[number];

/** Trace width of the paper at any speed (mm): 10 s at 25 mm/s, as on a printed 12-lead. */
export const TRACE_MM = 250;
/** Width used to fit the paper to the screen (trace + the widest calibration margin + right margin). */
export const FIT_MM = 15 + TRACE_MM + 5;
/** Calibration pulse: 1 mV for 200 ms. */
const CAL_S = 0.2;

export interface Panel {
  lead: string;
  xMm: number;
  widthMm: number;
  topMm: number;
  heightMm: number;
  baselineMm: number;
  t0: number;
  t1: number;
  rhythm: boolean;
}

export interface Paper {
  widthMm: number;
  heightMm: number;
  traceX0: number;
  windowS: number;
  panels: Panel[];
  /** Where calibration pulses stand (x of the pulse's start, baseline). */
  calibrations: { xMm: number; baselineMm: number }[];
  /** Lead-change marks between columns. */
  separators: { xMm: number; baselineMm: number }[];
}

export interface PaperSettings {
  layout: LayoutKind;
  speed: Speed;
  gain: Gain;
  /** The rhythm-strip lead (3×4) or the one lead shown (single). */
  lead: string;
  startS: number;
}

const round5 = (mm: number) => Math.max(5, Math.round(mm / 5) * 5);

/** Seconds of signal one screen of paper shows for these settings (before clipping to the record). */
export function nominalWindow(layout: LayoutKind, speed: Speed): number {
  return (layout === "single" ? TRACE_MM / 2 : TRACE_MM) / speed;
}

export function traceStart(speed: Speed): number {
  return Math.ceil((2 + CAL_S * speed + 2) / 5) * 5;
}

export function layoutPaper(settings: PaperSettings, traces: LeadTrace[], durationS: number, twelve: boolean): Paper {
  const { speed, gain } = settings;
  const layout: LayoutKind = settings.layout === "3x4" && !twelve ? "12x1" : settings.layout;
  const traceX0 = traceStart(speed);
  const windowS = Math.max(0.5, Math.min(nominalWindow(layout, speed), durationS - settings.startS));
  const widthMm = Math.ceil((traceX0 + (layout === "single" ? TRACE_MM / 2 : TRACE_MM) + 5) / 5) * 5;
  const panels: Panel[] = [];
  const calibrations: Paper["calibrations"] = [];
  const separators: Paper["separators"] = [];
  let y = 0;

  const addRow = (heightMm: number, baselineFrac: number, cells: { lead: string; t0: number; t1: number }[], rhythm = false) => {
    const baselineMm = y + round5(heightMm * baselineFrac);
    calibrations.push({ xMm: 2, baselineMm });
    let x = traceX0;
    cells.forEach((cell, i) => {
      const w = (cell.t1 - cell.t0) * speed;
      panels.push({ lead: cell.lead, xMm: x, widthMm: w, topMm: y, heightMm, baselineMm, t0: cell.t0, t1: cell.t1, rhythm });
      if (i > 0) separators.push({ xMm: x, baselineMm });
      x += w;
    });
    y += heightMm;
  };

  const start = settings.startS;
  if (layout === "3x4") {
    const rowH = round5(Math.max(20, gain * 3.5));
    const colS = windowS / 4;
    for (const row of GRID_3X4) {
      addRow(
        rowH,
        0.55,
        row.map((lead, c) => ({ lead, t0: start + c * colS, t1: start + (c + 1) * colS })),
      );
    }
    addRow(rowH, 0.55, [{ lead: settings.lead, t0: start, t1: start + windowS }], true);
  } else if (layout === "12x1") {
    const rowH = round5(Math.max(15, gain * 2.5));
    for (const trace of traces) addRow(rowH, 0.6, [{ lead: trace.name, t0: start, t1: start + windowS }]);
  } else {
    const rowH = round5(Math.max(30, gain * 5));
    addRow(rowH, 0.6, [{ lead: settings.lead, t0: start, t1: start + windowS }], true);
  }
  return { widthMm, heightMm: y + 5, traceX0, windowS, panels, calibrations, separators };
}

/** The panel under a point of the paper (mm), if any. */
export function panelAt(paper: Paper, xMm: number, yMm: number): Panel | undefined {
  return paper.panels.find(
    (p) => xMm >= p.xMm && xMm <= p.xMm + p.widthMm && yMm >= p.topMm && yMm <= p.topMm + p.heightMm,
  );
}

// -- drawing ------------------------------------------------------------------------------------------

export const PAPER_COLORS = {
  paper: "#fffdfd",
  minor: "#f5c4cc",
  major: "#e48a9a",
  trace: "#111111",
  derived: "#3a3a3a",
  label: "#1b1b1b",
  calibration: "#111111",
  beatV: "#c62828",
  beatS: "#1565c0",
  beatOther: "#6a1b9a",
};

export interface SignalSource {
  fs: number;
  startS: number;
  traces: LeadTrace[];
}

export interface BeatMark {
  t: number;
  label: string;
}

export interface DrawOptions {
  ppm: number; // device pixels per mm (integer)
  dpr: number;
  settings: PaperSettings;
  labels: Record<string, string>; // lead name -> label text (e.g. "III*" for derived)
  beats?: BeatMark[];
  /** Times shown on the rhythm strip, e.g. "0 s" ticks; drawn every second in a faint grey. */
  font: string;
}

export function drawGrid(ctx: CanvasRenderingContext2D, paper: Paper, ppm: number): void {
  const w = Math.round(paper.widthMm * ppm);
  const h = Math.round(paper.heightMm * ppm);
  ctx.fillStyle = PAPER_COLORS.paper;
  ctx.fillRect(0, 0, w, h);
  const line = (major: boolean) => {
    ctx.beginPath();
    for (let mm = 0; mm <= paper.widthMm; mm++) {
      if ((mm % 5 === 0) !== major) continue;
      const x = Math.round(mm * ppm) + 0.5;
      ctx.moveTo(x, 0);
      ctx.lineTo(x, h);
    }
    for (let mm = 0; mm <= paper.heightMm; mm++) {
      if ((mm % 5 === 0) !== major) continue;
      const y = Math.round(mm * ppm) + 0.5;
      ctx.moveTo(0, y);
      ctx.lineTo(w, y);
    }
    ctx.stroke();
  };
  ctx.lineWidth = 1;
  if (ppm >= 3) {
    ctx.strokeStyle = PAPER_COLORS.minor;
    line(false);
  }
  ctx.strokeStyle = PAPER_COLORS.major;
  ctx.lineWidth = ppm >= 6 ? 1.5 : 1;
  line(true);
}

function median(data: Float32Array, i0: number, i1: number): number {
  const n = i1 - i0;
  if (n <= 0) return 0;
  const step = Math.max(1, Math.floor(n / 1000));
  const values: number[] = [];
  for (let i = i0; i < i1; i += step) {
    const v = data[i] as number;
    if (!Number.isNaN(v)) values.push(v);
  }
  if (values.length === 0) return 0;
  values.sort((a, b) => a - b);
  return values[values.length >> 1] as number;
}

/** One lead over [t0, t1) into a panel: per-pixel min/max when there are more samples than pixels. */
export function drawTrace(
  ctx: CanvasRenderingContext2D,
  data: Float32Array,
  fs: number,
  dataStartS: number,
  panel: Panel,
  ppm: number,
  speed: number,
  gain: number,
): boolean {
  const pxPerS = speed * ppm;
  const pxPerMv = gain * ppm;
  const x0 = panel.xMm * ppm;
  const base = panel.baselineMm * ppm;
  const first = (panel.t0 - dataStartS) * fs;
  const i0 = Math.max(0, Math.floor(first));
  const i1 = Math.min(data.length, Math.ceil((panel.t1 - dataStartS) * fs));
  if (i1 - i0 < 2) return false;
  const offset = median(data, i0, i1);
  const spp = fs / pxPerS;
  let penUp = true;
  let drew = false;
  ctx.beginPath();
  if (spp <= 1.5) {
    for (let i = i0; i < i1; i++) {
      const v = data[i] as number;
      if (Number.isNaN(v)) {
        penUp = true;
        continue;
      }
      const x = x0 + (i - first) / spp;
      const y = base - (v - offset) * pxPerMv;
      if (penUp) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
      penUp = false;
      drew = true;
    }
  } else {
    const columns = Math.ceil((panel.t1 - panel.t0) * pxPerS);
    for (let c = 0; c < columns; c++) {
      const s0 = Math.max(i0, Math.floor(first + c * spp));
      const s1 = Math.min(i1, Math.floor(first + (c + 1) * spp));
      let lo = Infinity;
      let hi = -Infinity;
      let loAt = -1;
      let hiAt = -1;
      for (let i = s0; i < s1; i++) {
        const v = data[i] as number;
        if (Number.isNaN(v)) continue;
        if (v < lo) {
          lo = v;
          loAt = i;
        }
        if (v > hi) {
          hi = v;
          hiAt = i;
        }
      }
      if (loAt < 0) {
        penUp = true;
        continue;
      }
      const x = x0 + c + 0.5;
      const yLo = base - (lo - offset) * pxPerMv;
      const yHi = base - (hi - offset) * pxPerMv;
      const [ya, yb] = loAt <= hiAt ? [yLo, yHi] : [yHi, yLo];
      if (penUp) ctx.moveTo(x, ya);
      else ctx.lineTo(x, ya);
      ctx.lineTo(x, yb);
      penUp = false;
      drew = true;
    }
  }
  ctx.stroke();
  return drew;
}

export function drawPaper(
  ctx: CanvasRenderingContext2D,
  paper: Paper,
  source: SignalSource | null,
  options: DrawOptions,
): void {
  const { ppm, dpr, settings } = options;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  drawGrid(ctx, paper, ppm);
  const speed = settings.speed;
  const gain = settings.gain;

  // calibration pulses: 1 mV high (gain mm), 200 ms wide
  ctx.strokeStyle = PAPER_COLORS.calibration;
  ctx.lineWidth = Math.max(1, Math.round(1.3 * dpr));
  ctx.lineJoin = "miter";
  ctx.beginPath();
  for (const cal of paper.calibrations) {
    const x = cal.xMm * ppm;
    const w = CAL_S * speed * ppm;
    const b = cal.baselineMm * ppm;
    const top = b - gain * ppm;
    ctx.moveTo(x - ppm, b);
    ctx.lineTo(x, b);
    ctx.lineTo(x, top);
    ctx.lineTo(x + w, top);
    ctx.lineTo(x + w, b);
    ctx.lineTo(x + w + ppm, b);
  }
  ctx.stroke();

  // lead-change marks
  ctx.lineWidth = Math.max(1, Math.round(dpr));
  ctx.beginPath();
  for (const s of paper.separators) {
    const x = Math.round(s.xMm * ppm) + 0.5;
    ctx.moveTo(x, (s.baselineMm - 3) * ppm);
    ctx.lineTo(x, (s.baselineMm + 3) * ppm);
  }
  ctx.stroke();

  // traces
  ctx.lineJoin = "round";
  ctx.lineCap = "round";
  ctx.lineWidth = Math.max(1, 1.25 * dpr);
  const byName = new Map((source?.traces ?? []).map((t) => [t.name, t]));
  for (const panel of paper.panels) {
    const trace = byName.get(panel.lead);
    if (!trace || !source) continue;
    ctx.strokeStyle = trace.derived ? PAPER_COLORS.derived : PAPER_COLORS.trace;
    drawTrace(ctx, trace.data, source.fs, source.startS, panel, ppm, speed, gain);
  }

  // lead labels (over the grid, with a paper-coloured backing so that they stay legible)
  const fontPx = Math.round(Math.max(11 * dpr, 3.2 * ppm));
  ctx.font = `600 ${fontPx}px ${options.font}`;
  ctx.textBaseline = "top";
  for (const panel of paper.panels) {
    const text = options.labels[panel.lead] ?? panel.lead;
    const x = (panel.xMm + 1) * ppm;
    const y = (panel.topMm + 1) * ppm;
    const w = ctx.measureText(text).width;
    ctx.fillStyle = "rgba(255,253,253,0.85)";
    ctx.fillRect(x - 2, y - 1, w + 4, fontPx + 2);
    ctx.fillStyle = PAPER_COLORS.label;
    ctx.fillText(text, x, y);
  }

  // beat labels above the rhythm strip (only what is not a normal beat: doctors look for the odd one out)
  if (options.beats?.length) {
    const rhythm = paper.panels.filter((p) => p.rhythm);
    const small = Math.round(Math.max(10 * dpr, 2.6 * ppm));
    ctx.font = `700 ${small}px ${options.font}`;
    ctx.textAlign = "center";
    for (const panel of rhythm) {
      for (const beat of options.beats) {
        if (beat.t < panel.t0 || beat.t >= panel.t1 || beat.label === "N") continue;
        const x = (panel.xMm + (beat.t - panel.t0) * speed) * ppm;
        ctx.fillStyle =
          beat.label === "V" ? PAPER_COLORS.beatV : beat.label === "S" ? PAPER_COLORS.beatS : PAPER_COLORS.beatOther;
        ctx.fillText(beat.label, x, (panel.topMm + 1) * ppm);
      }
    }
    ctx.textAlign = "start";
  }
}
