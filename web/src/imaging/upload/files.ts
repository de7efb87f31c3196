/**
 * What the upload page does with what it is given before anything is sent: folders walked, ZIPs unpacked
 * in the browser (fflate), each file's DICOM File Meta Information read (its SOP Instance UID lets a
 * resumed upload skip what the archive already has), files that are not DICOM Part 10 set aside.
 */
import { unzip } from "fflate";

export interface PickedFile {
  /** path inside the folder or ZIP, else the file's name */
  path: string;
  data: Blob;
}

export interface DicomMeta {
  sopInstanceUid: string;
  sopClassUid: string;
  transferSyntax: string;
}

const DICOMDIR_CLASS = "1.2.840.10008.1.3.10";

/** The Part-10 file meta group (always explicit VR little endian), or null when not a DICOM file. */
export async function readMeta(blob: Blob): Promise<DicomMeta | null> {
  if (blob.size < 132) return null;
  const head = new Uint8Array(await blob.slice(0, Math.min(blob.size, 16384)).arrayBuffer());
  if (head[128] !== 0x44 || head[129] !== 0x49 || head[130] !== 0x43 || head[131] !== 0x4d) return null; // DICM
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const out: DicomMeta = { sopInstanceUid: "", sopClassUid: "", transferSyntax: "" };
  let pos = 132;
  while (pos + 8 <= head.length) {
    const group = view.getUint16(pos, true);
    const element = view.getUint16(pos + 2, true);
    if (group !== 0x0002) break;
    const vr = String.fromCharCode(head[pos + 4] ?? 0, head[pos + 5] ?? 0);
    let length: number;
    let valueAt: number;
    if (["OB", "OW", "OF", "SQ", "UT", "UN", "UC", "UR", "OD", "OL", "OV", "SV", "UV"].includes(vr)) {
      if (pos + 12 > head.length) break;
      length = view.getUint32(pos + 8, true);
      valueAt = pos + 12;
    } else {
      length = view.getUint16(pos + 6, true);
      valueAt = pos + 8;
    }
    if (length === 0xffffffff || valueAt + length > head.length) break;
    const text = () =>
      new TextDecoder("latin1").decode(head.subarray(valueAt, valueAt + length)).replace(/[\0 ]+$/, "");
    if (element === 0x0002) out.sopClassUid = text();
    else if (element === 0x0003) out.sopInstanceUid = text();
    else if (element === 0x0010) out.transferSyntax = text();
    pos = valueAt + length;
  }
  return out;
}

export function isDicomdir(meta: DicomMeta): boolean {
  return meta.sopClassUid === DICOMDIR_CLASS;
}

export function isZip(file: File): boolean {
  return /\.zip$/i.test(file.name) || file.type === "application/zip" || file.type === "application/x-zip-compressed";
}

/** The files inside a ZIP (directories and macOS resource forks left out). */
export async function unzipFile(file: File): Promise<PickedFile[]> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const entries = await new Promise<Record<string, Uint8Array>>((resolve, reject) =>
    unzip(bytes, (err, data) => (err ? reject(err) : resolve(data))),
  );
  return Object.entries(entries)
    .filter(([name, data]) => !name.endsWith("/") && !name.startsWith("__MACOSX/") && data.length > 0)
    .map(([name, data]) => ({ path: `${file.name}/${name}`, data: new Blob([data as BlobPart]) }));
}

/** Files from an <input> (a folder gives webkitRelativePath) — ZIPs unpacked. */
export async function expandFiles(files: File[]): Promise<PickedFile[]> {
  const out: PickedFile[] = [];
  for (const f of files) {
    if (isZip(f)) out.push(...(await unzipFile(f)));
    else out.push({ path: f.webkitRelativePath || f.name, data: f });
  }
  return out;
}

/** A drop: folders are walked (webkitGetAsEntry), ZIPs unpacked, plain files kept. */
export async function filesFromDrop(dt: DataTransfer): Promise<PickedFile[]> {
  const entries: FileSystemEntry[] = [];
  for (const item of Array.from(dt.items)) {
    const entry = item.kind === "file" ? item.webkitGetAsEntry?.() : null;
    if (entry) entries.push(entry);
  }
  if (entries.length === 0) return expandFiles(Array.from(dt.files));
  const files: File[] = [];
  const paths = new Map<File, string>();
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
      files.push(file);
      paths.set(file, `${prefix}${file.name}`);
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
        if (batch.length === 0) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const entry of entries) await walk(entry, "");
  const out: PickedFile[] = [];
  for (const f of files) {
    if (isZip(f)) out.push(...(await unzipFile(f)));
    else out.push({ path: paths.get(f) ?? f.name, data: f });
  }
  return out;
}
