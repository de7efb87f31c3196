/**
 * The imaging reading API (services/imaging/api_reading.py, reading_schemas.py) through the gateway:
 * the reading centre's worklist, claim, the report draft, signing, addenda, the PDF.
 */
import { ApiError } from "../../api/errors";
import { apiFetch, apiJson } from "../../api/session";

export type ReadingStatus = "new" | "assigned" | "in_progress" | "reported" | "signed";
export type ReadingPriority = "stat" | "urgent" | "routine";
export const OPEN_STATUSES: ReadingStatus[] = ["new", "assigned", "in_progress", "reported"];
export const READING_PRIORITIES: ReadingPriority[] = ["stat", "urgent", "routine"];

export interface WorklistItem {
  study_instance_uid: string;
  facility_id: string;
  priority: ReadingPriority;
  status: ReadingStatus;
  modalities: string[];
  study_date: string | null;
  study_description: string;
  num_series: number;
  num_instances: number;
  received_at: string;
  clinical_question: string;
  assignee_id: string | null;
  assignee_name: string | null;
  report_id: string | null;
  critical: boolean;
}

export interface Addendum {
  id: string;
  author_id: string;
  author_name: string;
  text: string;
  content_hash: string;
  created_at: string;
}

export interface Report {
  id: string;
  study_instance_uid: string;
  status: "draft" | "signed";
  modality: string;
  template: string;
  reader_id: string;
  reader_name: string;
  findings: string;
  impression: string;
  critical: boolean;
  critical_note: string;
  version: number;
  created_at: string;
  updated_at: string;
  signed_at: string | null;
  signed_by: string | null;
  signer_name: string | null;
  content_hash: string | null;
  turnaround_minutes: number | null;
  on_time: boolean | null;
  pdf_ready: boolean;
  addenda: Addendum[];
}

const BASE = "/api/imaging";
const JSON_HEADERS = { "Content-Type": "application/json" };
const enc = encodeURIComponent;

export function getWorklist(
  params: { status?: ReadingStatus[]; priority?: string; modality?: string; mine?: boolean; limit?: number; offset?: number },
  signal?: AbortSignal,
) {
  const q = new URLSearchParams();
  for (const s of params.status ?? []) q.append("status", s);
  if (params.priority) q.set("priority", params.priority);
  if (params.modality) q.set("modality", params.modality);
  if (params.mine) q.set("mine", "true");
  q.set("limit", String(params.limit ?? 50));
  q.set("offset", String(params.offset ?? 0));
  return apiJson<{ items: WorklistItem[]; limit: number; offset: number }>(`${BASE}/worklist?${q.toString()}`, { signal });
}

/** The study's report, or null while there is none (or, for the requester, none signed yet). */
export async function getReport(study: string, signal?: AbortSignal): Promise<Report | null> {
  try {
    return await apiJson<Report>(`${BASE}/studies/${enc(study)}/report`, { signal });
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

export function claimStudy(study: string) {
  return apiJson<Report>(`${BASE}/studies/${enc(study)}/claim`, { method: "POST" });
}

export function saveReport(
  study: string,
  body: { version: number; findings?: string; impression?: string; critical?: boolean; critical_note?: string },
) {
  return apiJson<Report>(`${BASE}/studies/${enc(study)}/report`, { method: "PUT", headers: JSON_HEADERS, body: JSON.stringify(body) });
}

export function signReport(study: string, version: number) {
  return apiJson<Report>(`${BASE}/studies/${enc(study)}/report/sign`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify({ version }),
  });
}

export function addAddendum(study: string, text: string) {
  return apiJson<Addendum>(`${BASE}/studies/${enc(study)}/report/addenda`, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify({ text }),
  });
}

/** Download the signed report's PDF (409 while it is still being rendered). */
export async function downloadPdf(study: string): Promise<void> {
  const res = await apiFetch(`${BASE}/studies/${enc(study)}/report/pdf`);
  if (!res.ok) {
    let body: Record<string, unknown> = {};
    try {
      body = (await res.json()) as Record<string, unknown>;
    } catch {
      // not JSON
    }
    throw new ApiError(res.status, String(body.error ?? `http_${res.status}`), String(body.detail ?? res.statusText), null, body);
  }
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = "imaging-report.pdf";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The requester's priority (and clinical question) for a study, at upload or later. */
export function setStudyPriority(study: string, priority: ReadingPriority, clinicalQuestion?: string) {
  return apiJson<WorklistItem>(`${BASE}/studies/${enc(study)}/priority`, {
    method: "PUT",
    headers: JSON_HEADERS,
    body: JSON.stringify({ priority, ...(clinicalQuestion ? { clinical_question: clinicalQuestion } : {}) }),
  });
}
