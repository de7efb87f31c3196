/**
 * Lead names and the standard 12-lead arrangement. A recording with leads I and II but without
 * III/aVR/aVL/aVF gets those derived by Einthoven's and Goldberger's relations (marked as derived).
 */

export const STANDARD_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"] as const;

/** The printed 3×4 layout: rows of [limb, augmented, precordial, precordial], columns in time order. */
export const GRID_3X4: string[][] = [
  ["I", "aVR", "V1", "V4"],
  ["II", "aVL", "V2", "V5"],
  ["III", "aVF", "V3", "V6"],
];

const CANONICAL: Record<string, string> = Object.fromEntries(
  [...STANDARD_LEADS, "MLII", "MLI", "MLIII", "VR", "VL", "VF", "AVR", "AVL", "AVF"].map((n) => [n.toUpperCase(), n]),
);

/** "avr" → "aVR", "MLII" → "II"; other names are kept as they are. */
export function canonicalLead(name: string): string {
  const n = name.trim();
  const upper = n.toUpperCase().replace(/^LEAD\s+/, "");
  const mapped = CANONICAL[upper];
  if (!mapped) return n;
  if (mapped === "MLII") return "II";
  if (mapped === "MLI") return "I";
  if (mapped === "MLIII") return "III";
  if (mapped === "VR" || mapped === "AVR") return "aVR";
  if (mapped === "VL" || mapped === "AVL") return "aVL";
  if (mapped === "VF" || mapped === "AVF") return "aVF";
  return mapped;
}

export interface LeadTrace {
  name: string;
  data: Float32Array;
  derived: boolean;
}

function combine(a: Float32Array, b: Float32Array, ka: number, kb: number): Float32Array {
  const n = Math.min(a.length, b.length);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ka * (a[i] as number) + kb * (b[i] as number);
  return out;
}

/** The recording's leads by canonical name, with the limb leads derived from I and II when absent. */
export function leadTraces(names: string[], data: Float32Array[]): LeadTrace[] {
  const out: LeadTrace[] = names.map((name, i) => ({
    name: canonicalLead(name),
    data: data[i] ?? new Float32Array(0),
    derived: false,
  }));
  const byName = new Map(out.map((t) => [t.name, t]));
  const one = byName.get("I")?.data;
  const two = byName.get("II")?.data;
  if (one && two) {
    const derive: [string, number, number][] = [
      ["III", -1, 1],
      ["aVR", -0.5, -0.5],
      ["aVL", 1, -0.5],
      ["aVF", -0.5, 1],
    ];
    for (const [name, ka, kb] of derive) {
      if (!byName.has(name)) {
        const trace = { name, data: combine(one, two, ka, kb), derived: true };
        out.push(trace);
        byName.set(name, trace);
      }
    }
  }
  // standard leads first, in their order, then anything else as it came
  const rank = (n: string) => {
    const i = (STANDARD_LEADS as readonly string[]).indexOf(n);
    return i < 0 ? STANDARD_LEADS.length + out.findIndex((t) => t.name === n) : i;
  };
  return out.sort((a, b) => rank(a.name) - rank(b.name));
}

/** Whether the 3×4 layout can be drawn: all twelve leads present (measured or derived). */
export function hasTwelveLeads(traces: LeadTrace[]): boolean {
  const names = new Set(traces.map((t) => t.name));
  return STANDARD_LEADS.every((n) => names.has(n));
}

/** The lead for the rhythm strip: II if present, else the first one. */
export function defaultRhythmLead(traces: LeadTrace[]): string {
  return traces.find((t) => t.name === "II")?.name ?? traces[0]?.name ?? "II";
}
