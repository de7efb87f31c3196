/**
 * The imaging archive's DICOMweb (docs/imaging.md) as the web app uses it, through the gateway:
 * QIDO-RS searches, WADO-RS metadata / frames / thumbnails, STOW-RS uploads built in the browser.
 */
import { ApiError, NetworkError } from "../api/errors";
import { apiFetch, freshAccessToken } from "../api/session";

export const DW = "/dicom-web";

/** One attribute of DICOM JSON (PS3.18 F.2). */
export interface DicomAttr {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}
export type DicomJson = Record<string, DicomAttr>;

export const TAG = {
  PatientName: "00100010",
  PatientID: "00100020",
  PatientBirthDate: "00100030",
  PatientSex: "00100040",
  StudyInstanceUID: "0020000D",
  StudyDate: "00080020",
  StudyTime: "00080030",
  AccessionNumber: "00080050",
  ModalitiesInStudy: "00080061",
  StudyDescription: "00081030",
  NumberOfStudyRelatedSeries: "00201206",
  NumberOfStudyRelatedInstances: "00201208",
  InstitutionName: "00080080",
  SeriesInstanceUID: "0020000E",
  SeriesNumber: "00200011",
  SeriesDescription: "0008103E",
  Modality: "00080060",
  NumberOfSeriesRelatedInstances: "00201209",
  SOPInstanceUID: "00080018",
  SOPClassUID: "00080016",
  InstanceNumber: "00200013",
  ImagePositionPatient: "00200032",
  SliceLocation: "00201041",
  SliceThickness: "00180050",
  NumberOfFrames: "00280008",
  Rows: "00280010",
  Columns: "00280011",
  PixelSpacing: "00280030",
  ImagerPixelSpacing: "00181164",
  BitsAllocated: "00280100",
  BitsStored: "00280101",
  PixelRepresentation: "00280103",
  SamplesPerPixel: "00280002",
  PhotometricInterpretation: "00280004",
  WindowCenter: "00281050",
  WindowWidth: "00281051",
  RescaleIntercept: "00281052",
  RescaleSlope: "00281053",
  FrameTime: "00181063",
  TransferSyntaxUID: "00020010",
  ReferencedSOPSequence: "00081199",
  FailedSOPSequence: "00081198",
  ReferencedSOPInstanceUID: "00081155",
  FailureReason: "00081197",
  WarningReason: "00081196",
  ErrorComment: "00000902",
  RetrieveURL: "00081190",
} as const;

export function str(ds: DicomJson | undefined, tag: string): string {
  const v = ds?.[tag]?.Value?.[0];
  if (v == null) return "";
  if (typeof v === "object") {
    const pn = v as { Alphabetic?: string; Ideographic?: string };
    return pn.Ideographic || pn.Alphabetic || "";
  }
  return String(v);
}

export function num(ds: DicomJson | undefined, tag: string, index = 0): number | null {
  const v = ds?.[tag]?.Value?.[index];
  if (v == null || v === "") return null;
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

export function nums(ds: DicomJson | undefined, tag: string): number[] {
  return (ds?.[tag]?.Value ?? []).map((v) => Number(v)).filter((n) => Number.isFinite(n));
}

/** A person name for people: "王^小东=王^小東" → "王小東"-style ideographic, else "Wang Xiaodong". */
export function personName(ds: DicomJson | undefined, tag: string = TAG.PatientName): string {
  const v = ds?.[tag]?.Value?.[0] as { Alphabetic?: string; Ideographic?: string } | undefined;
  if (!v) return "";
  if (v.Ideographic) return v.Ideographic.replace(/\^/g, "");
  return (v.Alphabetic ?? "").split("^").filter(Boolean).join(" ");
}

async function dicomJson<T = DicomJson[]>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await apiFetch(path, { headers: { Accept: "application/dicom+json" }, signal });
  if (res.status === 204) return [] as unknown as T;
  if (!res.ok) throw await apiErrorOf(res);
  const text = await res.text();
  return (text ? JSON.parse(text) : []) as T;
}

async function apiErrorOf(res: Response): Promise<ApiError> {
  let body: Record<string, unknown> = {};
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  const code = typeof body.error === "string" ? body.error : `http_${res.status}`;
  const detail = typeof body.detail === "string" ? body.detail : res.statusText;
  return new ApiError(res.status, code, detail, null, body);
}

export interface StudyQuery {
  patientId?: string;
  patientName?: string;
  dateFrom?: string; // yyyy-mm-dd
  dateTo?: string;
  modality?: string;
  limit: number;
  offset: number;
}

const STUDY_FIELDS = [
  "StudyDescription",
  "NumberOfStudyRelatedSeries",
  "NumberOfStudyRelatedInstances",
  "PatientBirthDate",
  "PatientSex",
  "InstitutionName",
];

export function searchStudies(q: StudyQuery, signal?: AbortSignal) {
  const p = new URLSearchParams();
  if (q.patientId?.trim()) p.set("PatientID", wildcard(q.patientId.trim()));
  if (q.patientName?.trim()) p.set("PatientName", wildcard(q.patientName.trim()));
  const from = (q.dateFrom ?? "").replace(/-/g, "");
  const to = (q.dateTo ?? "").replace(/-/g, "");
  if (from || to) p.set("StudyDate", from === to ? from : `${from}-${to}`);
  if (q.modality) p.set("ModalitiesInStudy", q.modality);
  for (const f of STUDY_FIELDS) p.append("includefield", f);
  p.set("limit", String(q.limit));
  p.set("offset", String(q.offset));
  return dicomJson(`${DW}/studies?${p.toString()}`, signal);
}

/** A value typed without wildcards searches by prefix (what people expect from a search box). */
function wildcard(v: string): string {
  return /[*?]/.test(v) ? v : `${v}*`;
}

export function getStudy(study: string, signal?: AbortSignal) {
  const p = new URLSearchParams({ StudyInstanceUID: study });
  for (const f of STUDY_FIELDS) p.append("includefield", f);
  return dicomJson(`${DW}/studies?${p.toString()}`, signal).then((list) => list[0] ?? null);
}

export function listSeries(study: string, signal?: AbortSignal) {
  return dicomJson(`${DW}/studies/${enc(study)}/series?includefield=NumberOfSeriesRelatedInstances`, signal);
}

export function seriesMetadata(study: string, series: string, signal?: AbortSignal) {
  return dicomJson(`${DW}/studies/${enc(study)}/series/${enc(series)}/metadata`, signal);
}

/** Which of these SOP Instance UIDs the archive already has (visible to the caller). */
export async function existingInstances(uids: string[], signal?: AbortSignal): Promise<Set<string>> {
  const have = new Set<string>();
  for (let i = 0; i < uids.length; i += 50) {
    const chunk = uids.slice(i, i + 50);
    const p = new URLSearchParams({ SOPInstanceUID: chunk.join(","), includefield: "SOPInstanceUID", limit: "1000" });
    const found = await dicomJson(`${DW}/instances?${p.toString()}`, signal);
    for (const ds of found) have.add(str(ds, TAG.SOPInstanceUID));
  }
  return have;
}

const enc = encodeURIComponent;

const FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1';

/** One frame, uncompressed little endian (decoded by the server when stored compressed). */
export async function fetchFrame(study: string, series: string, sop: string, frame: number, signal?: AbortSignal) {
  const res = await apiFetch(`${DW}/studies/${enc(study)}/series/${enc(series)}/instances/${enc(sop)}/frames/${frame}`, {
    headers: { Accept: FRAME_ACCEPT },
    signal,
  });
  if (!res.ok) throw await apiErrorOf(res);
  const body = new Uint8Array(await res.arrayBuffer());
  return firstPart(body, res.headers.get("Content-Type") ?? "");
}

/** The body of the first part of a multipart/related answer (or the body itself when not multipart). */
export function firstPart(body: Uint8Array, contentType: string): Uint8Array {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!/^multipart\//i.test(contentType) || !m) return body;
  const delim = new TextEncoder().encode(`--${m[1]}`);
  const start = indexOf(body, delim, 0);
  if (start < 0) return body;
  const crlf2 = indexOf(body, new Uint8Array([13, 10, 13, 10]), start);
  if (crlf2 < 0) return body;
  const dataStart = crlf2 + 4;
  const end = indexOf(body, new TextEncoder().encode(`\r\n--${m[1]}`), dataStart);
  return body.subarray(dataStart, end < 0 ? body.length : end);
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  const last = hay.length - needle.length;
  outer: for (let i = from; i <= last; i++) {
    if (hay[i] !== first) continue;
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** An image (thumbnail or rendered frame) as an object URL; the caller revokes it. */
export async function imageUrl(path: string, signal?: AbortSignal): Promise<string> {
  const res = await apiFetch(path, { headers: { Accept: "image/jpeg" }, signal });
  if (!res.ok) throw await apiErrorOf(res);
  return URL.createObjectURL(await res.blob());
}

export const studyThumbnail = (study: string) => `${DW}/studies/${enc(study)}/thumbnail?viewport=96,96`;
export const seriesThumbnail = (study: string, series: string) =>
  `${DW}/studies/${enc(study)}/series/${enc(series)}/thumbnail?viewport=96,96`;
export const renderedFrame = (study: string, series: string, sop: string, frame: number) =>
  `${DW}/studies/${enc(study)}/series/${enc(series)}/instances/${enc(sop)}/frames/${frame}/rendered?quality=90`;

// ---- STOW-RS ------------------------------------------------------------------------------------------

export interface StowPart {
  name: string;
  data: Blob;
}

export interface StowFailure {
  part: number; // index into the parts sent (0-based)
  sop: string;
  reason: number | null;
  comment: string;
}

export interface StowResult {
  status: number;
  stored: string[];
  warnings: { sop: string; reason: number | null }[];
  failures: StowFailure[];
  /** SOP Instance UID → Study Instance UID, from each stored instance's Retrieve URL */
  studies: Map<string, string>;
}

export interface StowHandle {
  promise: Promise<StowResult>;
  abort: () => void;
}

/** POST /dicom-web/studies with the parts as multipart/related; XHR for upload progress. `priority` (stat, urgent,
 * routine) becomes the reading priority of each study that receives instances (STOW `?priority=`). */
export function stow(parts: StowPart[], onProgress: (loaded: number, total: number) => void, priority?: string): StowHandle {
  const xhr = new XMLHttpRequest();
  let aborted = false;
  const boundary = `th-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const chunks: BlobPart[] = [];
  for (const p of parts) {
    chunks.push(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, p.data, "\r\n");
  }
  chunks.push(`--${boundary}--\r\n`);
  const body = new Blob(chunks);
  const promise = freshAccessToken().then(
    (token) =>
      new Promise<StowResult>((resolve, reject) => {
        if (aborted) {
          reject(new DOMException("aborted", "AbortError"));
          return;
        }
        xhr.open("POST", `${DW}/studies${priority ? `?priority=${encodeURIComponent(priority)}` : ""}`);
        if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
        xhr.setRequestHeader("Content-Type", `multipart/related; type="application/dicom"; boundary=${boundary}`);
        xhr.setRequestHeader("Accept", "application/dicom+json");
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable) onProgress(e.loaded, e.total);
        };
        xhr.onerror = () => reject(new NetworkError(new Error("upload failed")));
        xhr.onabort = () => reject(new DOMException("aborted", "AbortError"));
        xhr.onload = () => {
          let parsed: unknown = null;
          try {
            parsed = JSON.parse(xhr.responseText);
          } catch {
            // not JSON
          }
          if ([200, 202, 409].includes(xhr.status) && parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
            resolve(stowResult(xhr.status, parsed as DicomJson));
            return;
          }
          const b = (parsed && typeof parsed === "object" ? parsed : {}) as Record<string, unknown>;
          reject(
            new ApiError(
              xhr.status,
              typeof b.error === "string" ? b.error : `http_${xhr.status}`,
              typeof b.detail === "string" ? b.detail : xhr.statusText,
              null,
              b,
            ),
          );
        };
        xhr.send(body);
      }),
  );
  return {
    promise,
    abort: () => {
      aborted = true;
      xhr.abort();
    },
  };
}

function seq(ds: DicomJson, tag: string): DicomJson[] {
  return (ds[tag]?.Value ?? []) as DicomJson[];
}

export function stowResult(status: number, ds: DicomJson): StowResult {
  const stored: string[] = [];
  const warnings: StowResult["warnings"] = [];
  const studies = new Map<string, string>();
  for (const item of seq(ds, TAG.ReferencedSOPSequence)) {
    const sop = str(item, TAG.ReferencedSOPInstanceUID);
    stored.push(sop);
    const study = /\/studies\/([^/]+)/.exec(str(item, TAG.RetrieveURL))?.[1];
    if (study) studies.set(sop, decodeURIComponent(study));
    const w = num(item, TAG.WarningReason);
    if (w != null) warnings.push({ sop, reason: w });
  }
  const failures: StowFailure[] = seq(ds, TAG.FailedSOPSequence).map((item) => {
    const comment = str(item, TAG.ErrorComment);
    const m = /^part (\d+)/.exec(comment);
    return {
      part: m ? Number(m[1]) - 1 : -1,
      sop: str(item, TAG.ReferencedSOPInstanceUID),
      reason: num(item, TAG.FailureReason),
      comment: comment.replace(/^part \d+:\s*/, ""),
    };
  });
  return { status, stored, warnings, failures, studies };
}
