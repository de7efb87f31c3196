/** The measurements a reader confirms, their units and adult reference ranges (for colour, not diagnosis). */
import type { Analysis, Measurements } from "./api";

export type MeasureKey =
  | "hr_bpm"
  | "pr_ms"
  | "qrs_ms"
  | "qt_ms"
  | "qtc_ms"
  | "qtcf_ms"
  | "p_axis_deg"
  | "qrs_axis_deg"
  | "t_axis_deg";

export interface MeasureDef {
  key: MeasureKey;
  unit: string;
  /** Inclusive reference range; outside is "abnormal". */
  normal?: [number, number];
  /** A critical value (危急值 threshold of the issue). */
  critical?: (v: number) => boolean;
  min: number;
  max: number;
}

export const MEASURES: MeasureDef[] = [
  { key: "hr_bpm", unit: "bpm", normal: [60, 100], critical: (v) => v < 40 || v > 180, min: 10, max: 350 },
  { key: "pr_ms", unit: "ms", normal: [120, 200], min: 40, max: 600 },
  { key: "qrs_ms", unit: "ms", normal: [60, 110], min: 30, max: 300 },
  { key: "qt_ms", unit: "ms", normal: [300, 460], min: 150, max: 800 },
  { key: "qtc_ms", unit: "ms", normal: [340, 460], critical: (v) => v > 500, min: 200, max: 800 },
  { key: "qtcf_ms", unit: "ms", normal: [340, 460], min: 200, max: 800 },
  { key: "p_axis_deg", unit: "°", normal: [0, 75], min: -180, max: 360 },
  { key: "qrs_axis_deg", unit: "°", normal: [-30, 90], min: -180, max: 360 },
  { key: "t_axis_deg", unit: "°", normal: [-10, 100], min: -180, max: 360 },
];

export type Level = "normal" | "abnormal" | "critical" | "none";

export function levelOf(def: MeasureDef, value: number | null | undefined): Level {
  if (value === null || value === undefined || Number.isNaN(value)) return "none";
  if (def.critical?.(value)) return "critical";
  if (def.normal && (value < def.normal[0] || value > def.normal[1])) return "abnormal";
  return "normal";
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** The machine's measurements from its analysis, under the keys the report uses. */
export function machineMeasurements(analysis: Analysis | null | undefined): Partial<Record<MeasureKey, number>> {
  const out: Partial<Record<MeasureKey, number>> = {};
  if (!analysis) return out;
  const iv = analysis.intervals ?? {};
  const rr = analysis.rr ?? {};
  const pick = (key: MeasureKey, ...values: unknown[]) => {
    for (const v of values) {
      const n = num(v);
      if (n !== null) {
        out[key] = Math.round(n);
        return;
      }
    }
  };
  pick("hr_bpm", rr.hr_bpm, iv.hr_bpm);
  pick("pr_ms", iv.pr_ms);
  pick("qrs_ms", iv.qrs_ms);
  pick("qt_ms", iv.qt_ms);
  pick("qtc_ms", iv.qtc_ms, iv.qtcb_ms);
  pick("qtcf_ms", iv.qtcf_ms, iv.qtc_fridericia_ms);
  pick("p_axis_deg", iv.p_axis_deg, iv.p_axis);
  pick("qrs_axis_deg", iv.qrs_axis_deg, iv.qrs_axis);
  pick("t_axis_deg", iv.t_axis_deg, iv.t_axis);
  return out;
}

/** A device's measurements (the file's own), under the same keys. */
export function deviceMeasurements(m: Record<string, unknown> | null | undefined): Partial<Record<MeasureKey, number>> {
  const out: Partial<Record<MeasureKey, number>> = {};
  for (const def of MEASURES) {
    const v = num(m?.[def.key]);
    if (v !== null) out[def.key] = Math.round(v);
  }
  const qtcb = num(m?.qtcb_ms);
  if (out.qtc_ms === undefined && qtcb !== null) out.qtc_ms = Math.round(qtcb);
  return out;
}

export function reportValue(m: Measurements, key: MeasureKey): number | null {
  const v = m[key];
  if (typeof v === "number") return v;
  if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return null;
}
