/**
 * The ECG service's API as the web app uses it (services/ecg/api.py, schemas.py), through the gateway.
 * Types mirror services/ecg/schemas.py; fields the UI does not need are left out.
 */
import { ApiError, NetworkError } from "../api/errors";
import { apiFetch, apiJson, freshAccessToken } from "../api/session";

export type Priority = "routine" | "urgent" | "stat";
export type RecordingStatus = "new" | "analysing" | "ready" | "in_review" | "signed" | "failed";
export const PRIORITIES: Priority[] = ["routine", "urgent", "stat"];

export interface RecordingSummary {
  id: string;
  facility_id: string;
  patient_id: string | null;
  priority: Priority;
  status: RecordingStatus;
  critical: boolean;
  source_format: string;
  fs: number;
  lead_names: string[];
  duration_s: number;
  start_time: string | null;
  received_at: string;
  analysed_at: string | null;
  signed_at: string | null;
  reader_name?: string | null;
}

export interface Statement {
  code?: string | null;
  zh: string;
  en: string;
  source?: "machine" | "reader";
}

export interface Finding {
  code: string;
  zh?: string;
  en?: string;
  value?: number | null;
  unit?: string | null;
  at_s?: number | null;
}

/** The machine reading (services/ecg/analysis/models.py Analysis.to_dict()); only what the UI reads. */
export interface Analysis {
  fs: number;
  duration_s: number;
  lead_names: string[];
  quality?: { overall?: string; usable_leads?: string[]; leads?: { lead: string; usable: boolean }[] };
  beats?: { count?: number; samples?: number[]; labels?: string[]; counts?: Record<string, number> };
  rr?: Record<string, unknown>;
  intervals?: Record<string, unknown>;
  rhythm?: { rhythm?: string; af?: boolean } & Record<string, unknown>;
  statements?: Statement[];
  critical?: Finding[];
  disclaimer_zh?: string;
  disclaimer_en?: string;
  summary?: Record<string, unknown> | null;
}

export interface Recording extends RecordingSummary {
  uploaded_by: string;
  clinical_note: string | null;
  n_samples: number;
  device: Record<string, unknown>;
  device_measurements: Record<string, unknown>;
  file_patient: Record<string, unknown>;
  warnings: string[];
  original_files: { name: string; size: number; content_type?: string }[];
  analysis_error: string | null;
  analysis: Analysis | null;
  findings: Finding[];
  alert_id: string | null;
  report_id: string | null;
}

export interface Page<T> {
  items: T[];
  limit: number;
  offset: number;
}

export interface WorklistItem extends RecordingSummary {
  finding?: string | null;
  alert_status?: string | null;
}

export interface Alert {
  id: string;
  facility_id: string;
  recording_id: string;
  /** The recording's patient in the register (null when the upload named none). */
  patient_id: string | null;
  finding: string;
  findings: Finding[];
  message_zh: string;
  message_en: string;
  priority: Priority;
  status: "open" | "acknowledged";
  escalation_level: number;
  escalated_at: string | null;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  acknowledged_name: string | null;
  acknowledge_note: string | null;
  created_at: string;
  /** The reader(s) on duty when it was raised (or escalated); empty: nobody was on duty. */
  assigned_to?: string[];
  assigned_names?: string[];
  /** Assigned to the user looking at it (set per receiver by the service). */
  for_you?: boolean;
  /** Nobody was on duty: every reader of the reading centre is asked. */
  unassigned?: boolean;
  /** Escalated to the reading centre's facility_admin (level 2 and above). */
  to_admin?: boolean;
}

/** A shift on the reading centre's duty roster (services/ecg/schemas.py DutyShift). */
export interface DutyShift {
  id: string;
  facility_id: string;
  user_id: string;
  display_name: string;
  starts_at: string;
  ends_at: string;
  created_by: string;
  created_by_name: string;
  created_at: string;
}

export interface Addendum {
  id: string;
  author_id: string;
  author_name: string;
  text: string;
  content_hash: string;
  created_at: string;
}

export type Measurements = Record<string, number | string | null>;

export interface Report {
  id: string;
  recording_id: string;
  facility_id: string;
  status: "draft" | "signed";
  reader_id: string;
  reader_name: string;
  measurements: Measurements;
  statements: Statement[];
  conclusion: string;
  version: number;
  claimed_at: string;
  updated_at: string;
  signed_at: string | null;
  signed_by: string | null;
  signer_name: string | null;
  content_hash: string | null;
  turnaround_minutes: number | null;
  on_time: boolean | null;
  pdf_ready: boolean;
  dicom_ready: boolean;
  addenda: Addendum[];
}

export interface Patient {
  id: string;
  name: string;
  id_number: string | null;
  sex: string;
  birth_date: string | null;
  phone: string | null;
}

const BASE = "/api/ecg";
const JSON_HEADERS = { "Content-Type": "application/json" };

export function listRecordings(params: { status?: RecordingStatus[]; limit?: number; offset?: number } = {}) {
  const q = new URLSearchParams();
  for (const s of params.status ?? []) q.append("status", s);
  q.set("limit", String(params.limit ?? 50));
  q.set("offset", String(params.offset ?? 0));
  return apiJson<Page<RecordingSummary>>(`${BASE}/recordings?${q.toString()}`);
}

export function getRecording(id: string) {
  return apiJson<Recording>(`${BASE}/recordings/${encodeURIComponent(id)}`);
}

export function getWorklist(params: { status?: RecordingStatus[]; priority?: Priority; limit?: number } = {}) {
  const q = new URLSearchParams();
  for (const s of params.status ?? []) q.append("status", s);
  if (params.priority) q.set("priority", params.priority);
  q.set("limit", String(params.limit ?? 100));
  return apiJson<Page<WorklistItem>>(`${BASE}/worklist?${q.toString()}`);
}

/** The recording's report, or null while it has none (404). */
export async function getReport(recordingId: string): Promise<Report | null> {
  try {
    return await apiJson<Report>(`${BASE}/recordings/${encodeURIComponent(recordingId)}/report`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

export function claim(recordingId: string) {
  return apiJson<Report>(`${BASE}/recordings/${encodeURIComponent(recordingId)}/claim`, { method: "POST" });
}

export interface DraftChanges {
  version: number;
  measurements?: Measurements;
  statements?: Statement[];
  conclusion?: string;
}

export function saveDraft(recordingId: string, body: DraftChanges) {
  return apiJson<Report>(`${BASE}/recordings/${encodeURIComponent(recordingId)}/report`, {
    method: "PUT",
    headers: JSON_HEADERS,
    body: JSON.stringify(body),
  });
}

export function signReport(recordingId: string, version: number) {
  return apiJson<Report>(`${BASE}/recordings/${encodeURIComponent(recordingId)}/report/sign`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify({ version }),
  });
}

export function addAddendum(recordingId: string, text: string) {
  return apiJson<Addendum>(`${BASE}/recordings/${encodeURIComponent(recordingId)}/report/addenda`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify({ text }),
  });
}

export function listAlerts(includeAcknowledged = false) {
  const q = includeAcknowledged ? "?include_acknowledged=true" : "";
  return apiJson<{ items: Alert[] }>(`${BASE}/alerts${q}`);
}

export function acknowledgeAlert(alertId: string, note?: string) {
  return apiJson<Alert>(`${BASE}/alerts/${encodeURIComponent(alertId)}/acknowledge`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify(note ? { note } : {}),
  });
}

// -- the duty roster (值班) ---------------------------------------------------------------------------

/** Who is on duty now: at the caller's facility and at the reading centre that reads for it. */
export function dutyNow() {
  return apiJson<{ facility_ids: string[]; items: DutyShift[] }>(`${BASE}/duty/now`);
}

/** The caller's facility's roster (default window: 12 h ago to 14 days ahead), optionally one reader's. */
export function listDuty(userId?: string) {
  const q = userId ? `?user_id=${encodeURIComponent(userId)}` : "";
  return apiJson<{ items: DutyShift[] }>(`${BASE}/duty${q}`);
}

/** Put the caller on duty from now for ``hours``. */
export function goOnDuty(hours: number) {
  return apiJson<DutyShift>(`${BASE}/duty`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ hours }) });
}

/** End a running shift now, or remove a future one. */
export async function takeOffDuty(shiftId: string): Promise<void> {
  const response = await apiFetch(`${BASE}/duty/${encodeURIComponent(shiftId)}`, { method: "DELETE" });
  if (!response.ok) throw await ApiError.from(response);
}

export function searchPatients(q: string, signal?: AbortSignal) {
  const query = new URLSearchParams({ q, limit: "10" });
  return apiJson<Page<Patient>>(`/api/health/patients?${query.toString()}`, { signal });
}

export function getPatient(id: string) {
  return apiJson<Patient>(`/api/health/patients/${encodeURIComponent(id)}`);
}

// -- the signal for the viewer -----------------------------------------------------------------------

/** A window of the recording: one Float32Array per lead in millivolts (NaN where there is no data). */
export interface SignalWindow {
  fs: number;
  startS: number;
  leadNames: string[];
  leads: Float32Array[];
}

/**
 * GET …/signal?format=binary: little-endian float32, leads x samples (NaN: no data), described by the
 * X-ECG-Fs, X-ECG-Start, X-ECG-Leads and X-ECG-Samples headers (a tenth of the JSON's size and no parsing).
 */
export async function getSignal(
  recordingId: string,
  window: { startS: number; durationS: number; maxFs?: number },
  signal?: AbortSignal,
): Promise<SignalWindow> {
  const q = new URLSearchParams({
    start: window.startS.toFixed(3),
    duration: window.durationS.toFixed(3),
    format: "binary",
  });
  if (window.maxFs) q.set("fs", String(window.maxFs));
  const response = await apiFetch(`${BASE}/recordings/${encodeURIComponent(recordingId)}/signal?${q.toString()}`, {
    signal,
    headers: { Accept: "application/octet-stream" },
  });
  if (!response.ok) throw await ApiError.from(response);
  const fs = Number(response.headers.get("X-ECG-Fs"));
  const startS = Number(response.headers.get("X-ECG-Start") ?? "0");
  const leadNames = (response.headers.get("X-ECG-Leads") ?? "").split(",").filter((n) => n !== "");
  const buffer = await response.arrayBuffer();
  const all = new Float32Array(buffer);
  const samples = Number(response.headers.get("X-ECG-Samples") ?? Math.floor(all.length / Math.max(1, leadNames.length)));
  if (!Number.isFinite(fs) || fs <= 0 || leadNames.length === 0 || samples * leadNames.length > all.length) {
    throw new ApiError(502, "bad_signal", "the signal answer is incomplete", null, {});
  }
  const leads = leadNames.map((_, i) => all.subarray(i * samples, (i + 1) * samples));
  return { fs, startS, leadNames, leads };
}

// -- downloads ----------------------------------------------------------------------------------------

export const downloadPaths = {
  pdf: (id: string) => `${BASE}/recordings/${encodeURIComponent(id)}/report/pdf`,
  dicom: (id: string) => `${BASE}/recordings/${encodeURIComponent(id)}/report/dicom`,
  original: (id: string) => `${BASE}/recordings/${encodeURIComponent(id)}/original`,
};

/** Fetch a protected file with the bearer token and hand it to the browser as a download. */
export async function download(path: string, fallbackName: string): Promise<void> {
  const response = await apiFetch(path, { headers: { Accept: "*/*" } });
  if (!response.ok) throw await ApiError.from(response);
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  const plain = /filename="?([^";]+)"?/i.exec(disposition);
  const name = star?.[1] ? decodeURIComponent(star[1]) : plain?.[1] ?? fallbackName;
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// -- upload with progress (XMLHttpRequest: fetch has no upload progress) ------------------------------

export interface UploadOptions {
  files: File[];
  priority: Priority;
  patientId?: string | null;
  clinicalNote?: string;
  onProgress: (loaded: number, total: number) => void;
}

export interface UploadHandle {
  promise: Promise<Recording>;
  abort: () => void;
}

export function uploadRecording(options: UploadOptions): UploadHandle {
  const xhr = new XMLHttpRequest();
  let aborted = false;
  const promise = freshAccessToken().then(
    (token) =>
      new Promise<Recording>((resolve, reject) => {
        if (aborted) {
          reject(new DOMException("aborted", "AbortError"));
          return;
        }
        const form = new FormData();
        form.set("priority", options.priority);
        if (options.patientId) form.set("patient_id", options.patientId);
        if (options.clinicalNote) form.set("clinical_note", options.clinicalNote);
        for (const file of options.files) form.append("file", file, file.name);

        xhr.open("POST", `${BASE}/recordings`);
        if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
        xhr.setRequestHeader("Accept", "application/json");
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable) options.onProgress(e.loaded, e.total);
        };
        xhr.onerror = () => reject(new NetworkError(new Error("upload failed")));
        xhr.onabort = () => reject(new DOMException("aborted", "AbortError"));
        xhr.onload = () => {
          let body: Record<string, unknown> = {};
          try {
            const parsed: unknown = JSON.parse(xhr.responseText);
            if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
          } catch {
            // not JSON: keep the status alone
          }
          if (xhr.status >= 200 && xhr.status < 300) {
            resolve(body as unknown as Recording);
            return;
          }
          reject(errorFromBody(xhr.status, xhr.statusText, body, xhr.getResponseHeader("Retry-After")));
        };
        xhr.send(form);
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

/** The platform's error shape; FastAPI's own 422 (a list of problems in ``detail``) is made readable. */
function errorFromBody(status: number, statusText: string, body: Record<string, unknown>, retry: string | null): ApiError {
  const code = typeof body.error === "string" ? body.error : `http_${status}`;
  let detail = statusText;
  if (typeof body.detail === "string") detail = body.detail;
  else if (Array.isArray(body.detail)) {
    detail = body.detail
      .map((d: unknown) => (d && typeof d === "object" && "msg" in d ? String((d as { msg: unknown }).msg) : String(d)))
      .join("; ");
  }
  return new ApiError(status, code, detail, retry && /^\d+$/.test(retry) ? Number(retry) : null, body);
}
