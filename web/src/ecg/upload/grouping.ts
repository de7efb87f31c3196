/**
 * Which picked files travel together as one recording: a WFDB header with its signal files (same name
 * stem: .hea + .dat / .mat, plus annotation side files), an ISHNE .ecg with its .ann; every other file
 * is a recording of its own (a .zip is one recording too).
 */

export const ACCEPT = [
  ".xml", ".scp", ".edf", ".dcm", ".csv", ".txt", ".ecg", ".ann", ".hea", ".dat", ".mat", ".atr", ".zip", ".bin",
].join(",");

const SIDECARS = new Set([".atr", ".ann", ".txt", ".md", ".json", ".xyz", ".qrs"]);
const WFDB_SIGNAL = new Set([".dat", ".mat"]);

export interface FileGroup {
  key: string;
  files: File[];
  /** A hint shown before upload (e.g. a .dat without its .hea); the service still decides. */
  warning?: "wfdbMissingHeader" | "wfdbMissingSignal";
}

function split(name: string): [string, string] {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? [name.slice(0, dot).toLowerCase(), name.slice(dot).toLowerCase()] : [name.toLowerCase(), ""];
}

export function groupFiles(files: File[]): FileGroup[] {
  const byStem = new Map<string, File[]>();
  for (const f of files) {
    const [stem] = split(f.name);
    const list = byStem.get(stem) ?? [];
    list.push(f);
    byStem.set(stem, list);
  }
  const groups: FileGroup[] = [];
  for (const [stem, list] of byStem) {
    const exts = list.map((f) => split(f.name)[1]);
    if (exts.includes(".hea")) {
      const hasSignal = exts.some((e) => WFDB_SIGNAL.has(e));
      groups.push({ key: stem, files: list, warning: hasSignal ? undefined : "wfdbMissingSignal" });
      continue;
    }
    const mains = list.filter((f) => !SIDECARS.has(split(f.name)[1]));
    const sides = list.filter((f) => SIDECARS.has(split(f.name)[1]));
    if (mains.length === 0) {
      // only side files (e.g. a lone .atr): one group each, the service will say why it cannot read them
      for (const f of sides) groups.push({ key: f.name, files: [f] });
      continue;
    }
    mains.forEach((f, i) => {
      const warning = WFDB_SIGNAL.has(split(f.name)[1]) ? ("wfdbMissingHeader" as const) : undefined;
      groups.push({ key: mains.length > 1 ? f.name : stem, files: i === 0 ? [f, ...sides] : [f], warning });
    });
  }
  return groups;
}
