/**
 * The consult service's API as the web app uses it (docs/consult.md; services/consult/api*.py), through the
 * gateway. Types mirror the service's answers; fields the UI does not need are left out, and fields that
 * may be absent in an older answer are optional.
 */
import { ApiError, NetworkError } from "../api/errors";
import { apiFetch, apiJson, freshAccessToken } from "../api/session";

export type ConsultStatus =
  | "draft"
  | "submitted"
  | "accepted"
  | "declined"
  | "scheduled"
  | "in_session"
  | "opinion_written"
  | "signed"
  | "closed"
  | "cancelled";
export type Urgency = "routine" | "urgent" | "emergency";
export const URGENCIES: Urgency[] = ["routine", "urgent", "emergency"];
export const STATUSES: ConsultStatus[] = [
  "draft",
  "submitted",
  "accepted",
  "scheduled",
  "in_session",
  "opinion_written",
  "signed",
  "closed",
  "declined",
  "cancelled",
];
export const RELATIONS = ["本人", "配偶", "子女", "父母", "其他监护人"] as const;
export type AttachmentKind = "imaging_study" | "ecg_recording" | "pathology_case";

export interface Attachment {
  id?: string;
  kind: AttachmentKind;
  ref: string;
  label: string | null;
  added_at?: string;
}

export interface Consent {
  id?: string;
  method: "signed_form" | "e_consent";
  signer_name: string;
  relation: string;
  statement_version?: string | null;
  recorded_by?: string;
  recorded_by_name?: string | null;
  recorded_at: string;
  statement_hash?: string | null;
  content_type?: string | null;
  size_bytes?: number | null;
  has_file?: boolean;
  withdrawn_at?: string | null;
}

export interface Transition {
  id?: string;
  from_status: ConsultStatus | null;
  to_status: ConsultStatus;
  action: string;
  actor_id?: string | null;
  actor_name?: string | null;
  detail?: Record<string, unknown>;
  at: string;
}

export interface Booking {
  id?: string;
  slot_id: string | null;
  specialist_name?: string;
  starts_at: string;
  ends_at: string;
  booked_by_name?: string;
}

export interface ConsultSummary {
  id: string;
  facility_id: string;
  target_facility_id: string;
  requester_id: string;
  requester_name?: string | null;
  consultant_id: string | null;
  consultant_name?: string | null;
  specialty: string | null;
  target_department?: string | null;
  status: ConsultStatus;
  urgency: Urgency;
  patient_name: string;
  patient_sex?: string | null;
  patient_age?: number | null;
  reason: string;
  created_at: string;
  submitted_at?: string | null;
  respond_by?: string | null;
  opinion_by?: string | null;
  overdue?: boolean;
  overdue_at?: string | null;
  escalation_level?: number;
  booking?: Booking | null;
}

export interface Participant {
  id?: string;
  user_id: string;
  display_name: string;
  role: "requester" | "consultant" | "invitee";
}

export interface Session {
  id: string;
  consult_id?: string;
  started_at?: string;
  ended_at?: string | null;
}

/** The consult as the detail page uses it: the row, flattened with the detail's parts (see getConsult). */
export interface Consult extends ConsultSummary {
  patient_id?: string | null;
  question: string;
  clinical_summary: string;
  decline_reason?: string | null;
  cancel_reason?: string | null;
  consent: Consent | null;
  attachments: Attachment[];
  transitions: Transition[];
  participants: Participant[];
  sessions: Session[];
  /** requesting, target, consultant, requester, invitee */
  my_roles: string[];
  allowed_actions: string[];
  active_session_id: string | null;
}

/** GET /consults/{id}: {consult, my_roles, allowed_actions, participants, attachments, consent, history, sessions}. */
interface ConsultDetailOut {
  consult: ConsultSummary & Omit<Consult, keyof ConsultSummary | "consent" | "attachments" | "transitions" | "participants" | "sessions" | "my_roles" | "allowed_actions" | "active_session_id">;
  my_roles: string[];
  allowed_actions: string[];
  participants: Participant[];
  attachments: Attachment[];
  consent: { recorded: boolean; current: Consent | null };
  history: Transition[];
  sessions: Session[];
}

export interface Page<T> {
  items: T[];
  limit?: number;
  offset?: number;
  total?: number;
}

export interface ConsultDraft {
  patient_id?: string | null;
  patient_name: string;
  patient_sex: string;
  patient_age: number | null;
  reason: string;
  question: string;
  clinical_summary: string;
  urgency: Urgency;
  target_facility_id: string;
  specialty: string | null;
  consultant_id: string | null;
}

export interface Specialist {
  id: string;
  display_name: string;
  facility_id?: string;
}

export interface Slot {
  id: string;
  specialist_id?: string;
  specialist_name?: string | null;
  starts_at: string;
  ends_at: string;
  free: boolean;
}

export interface Addendum {
  id: string;
  author_id?: string;
  author_name: string;
  text: string;
  created_at: string;
  content_hash?: string;
}

export interface Opinion {
  id?: string;
  consult_id: string;
  status: "draft" | "signed";
  findings: string;
  diagnosis: string;
  recommendations: string;
  follow_up: string;
  referral_advised: boolean;
  version: number;
  author_id?: string;
  author_name?: string | null;
  updated_at?: string;
  signed_at: string | null;
  signer_name?: string | null;
  content_hash: string | null;
  acknowledged_at?: string | null;
  acknowledged_name?: string | null;
  addenda: Addendum[];
}

export interface ChatMessage {
  id: string;
  consult_id?: string;
  author_id: string;
  author_name?: string | null;
  kind?: "text" | "file" | "system";
  text?: string | null;
  file?: { name: string; content_type: string; size_bytes: number } | null;
  created_at: string;
}

/** One recorded track file (one per camera or microphone and recording). */
export interface Recording {
  id: string;
  recording_id: string;
  session_id: string;
  participant_user_id: string;
  kind: string;
  content_type: string;
  size_bytes: number;
  duration_seconds: number;
  started_at: string;
  ended_at: string;
}

const BASE = "/api/consult";
const JSON_HEADERS = { "Content-Type": "application/json" };
const enc = encodeURIComponent;

function post<T>(path: string, body?: unknown, method = "POST") {
  return apiJson<T>(path, {
    method,
    headers: body === undefined ? undefined : JSON_HEADERS,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function noContent(path: string, method: string): Promise<void> {
  const response = await apiFetch(path, { method });
  if (!response.ok) throw await ApiError.from(response);
}

const c = (id: string) => `${BASE}/consults/${enc(id)}`;

// -- consults ------------------------------------------------------------------------------------------

export type Box = "outgoing" | "incoming";

export function listConsults(params: { box: Box; status?: ConsultStatus[]; urgency?: Urgency | null; limit?: number }) {
  const q = new URLSearchParams({ box: params.box, limit: String(params.limit ?? 100) });
  for (const s of params.status ?? []) q.append("status", s);
  if (params.urgency) q.set("urgency", params.urgency);
  return apiJson<Page<ConsultSummary>>(`${BASE}/consults?${q.toString()}`);
}

const CURRENT_BOOKING: ConsultStatus[] = ["scheduled", "in_session", "opinion_written", "signed", "closed"];

/** The consult with its parts (and its current booking, when it has one). */
export async function getConsult(id: string): Promise<Consult> {
  const d = await apiJson<ConsultDetailOut>(c(id));
  const open = d.sessions.filter((s) => !s.ended_at);
  let booking: Booking | null = null;
  if (CURRENT_BOOKING.includes(d.consult.status)) {
    booking = await apiJson<Booking>(`${c(id)}/booking`).catch(() => null);
  }
  return {
    ...d.consult,
    consent: d.consent.current,
    attachments: d.attachments,
    transitions: d.history,
    participants: d.participants,
    sessions: d.sessions,
    my_roles: d.my_roles,
    allowed_actions: d.allowed_actions,
    active_session_id: open[open.length - 1]?.id ?? null,
    booking,
  };
}

export const createConsult = (draft: ConsultDraft) => post<ConsultSummary>(`${BASE}/consults`, draft);
export const updateConsult = (id: string, draft: Partial<ConsultDraft>) => post<ConsultSummary>(c(id), draft, "PATCH");

export type Action = "submit" | "accept" | "decline" | "cancel" | "close" | "reassign";
export function transition(id: string, action: Action, body?: Record<string, unknown>) {
  return post<ConsultSummary>(`${c(id)}/${action}`, body ?? {});
}

export const addAttachment = (id: string, a: Attachment) => post<Attachment>(`${c(id)}/attachments`, a);
export const removeAttachment = (id: string, attachmentId: string) =>
  noContent(`${c(id)}/attachments/${enc(attachmentId)}`, "DELETE");

/** Specialists of a facility, from the gateway's directory (ids and names only). */
export async function listSpecialists(facilityId: string, _specialty?: string | null): Promise<Page<Specialist>> {
  const q = new URLSearchParams({ facility_id: facilityId });
  const rows = await apiJson<{ user_id: string; display_name: string; facility_id: string }[]>(
    `/api/directory/specialists?${q.toString()}`,
  );
  const items = rows.map((r) => ({ id: r.user_id, display_name: r.display_name, facility_id: r.facility_id }));
  return { items } as Page<Specialist>;
}

// -- consent -------------------------------------------------------------------------------------------

export const STATEMENT_VERSION = "2026-01";

export function recordEConsent(id: string, signerName: string, relation: string) {
  return post<Consent>(`${c(id)}/consent`, {
    method: "e_consent",
    signer_name: signerName,
    relation,
    statement_version: STATEMENT_VERSION,
  });
}

export function uploadConsentForm(
  id: string,
  file: File,
  signerName: string,
  relation: string,
  onProgress: (loaded: number, total: number) => void,
): UploadHandle<Consent> {
  const form = new FormData();
  form.set("signer_name", signerName);
  form.set("relation", relation);
  form.set("file", file, file.name);
  return upload<Consent>(`${c(id)}/consent`, form, onProgress);
}

export const withdrawConsent = (id: string) => noContent(`${c(id)}/consent`, "DELETE");
export const consentFilePath = (id: string) => `${c(id)}/consent/file`;

// -- scheduling ----------------------------------------------------------------------------------------

/** Free slots from now on: of the consult's consultant (else its target facility). */
export function listSlots(consultId: string) {
  return apiJson<Page<Slot>>(`${BASE}/slots?consult_id=${enc(consultId)}`);
}

export function publishAvailability(startsAt: string, endsAt: string, slotMinutes: number) {
  return post<{ id: string; slots: Slot[] }>(`${BASE}/availability`, { starts_at: startsAt, ends_at: endsAt, slot_minutes: slotMinutes });
}

/** Book a free slot (accepted → scheduled) or move a scheduled consult to it (reschedule). */
export const book = (id: string, slotId: string) => post<Booking>(`${c(id)}/booking`, { slot_id: slotId });
export const calendarPath = (id: string) => `${c(id)}/calendar.ics`;

// -- opinion -------------------------------------------------------------------------------------------

/** The consult's opinion, or null while there is none (404). */
export async function getOpinion(id: string): Promise<Opinion | null> {
  try {
    return await apiJson<Opinion>(`${c(id)}/opinion`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

export interface OpinionBody {
  findings: string;
  diagnosis: string;
  recommendations: string;
  follow_up: string;
  referral_advised: boolean;
  version?: number;
}

export const saveOpinion = (id: string, body: OpinionBody) => post<Opinion>(`${c(id)}/opinion`, body, "PUT");
export const signOpinion = (id: string, version: number) => post<Opinion>(`${c(id)}/opinion/sign`, { version });
export const addOpinionAddendum = (id: string, text: string) => post<Addendum>(`${c(id)}/opinion/addenda`, { text });
export const acknowledgeOpinion = (id: string) => post<Opinion>(`${c(id)}/opinion/acknowledge`, {});
export const opinionPdfPath = (id: string) => `${c(id)}/opinion.pdf`;

// -- chat ----------------------------------------------------------------------------------------------

/** The history, oldest first; ``before`` is a message id (the answer's next_before pages further back). */
export function listMessages(id: string, before?: string | null, limit = 50) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (before) q.set("before", before);
  return apiJson<{ items: ChatMessage[]; next_before: string | null }>(`${c(id)}/messages?${q.toString()}`);
}

export const sendMessage = (id: string, text: string) => post<ChatMessage>(`${c(id)}/messages`, { text });

export function uploadChatFile(id: string, file: File, onProgress: (loaded: number, total: number) => void) {
  const form = new FormData();
  form.set("file", file, file.name);
  return upload<ChatMessage>(`${c(id)}/messages/files`, form, onProgress);
}

export const messageFilePath = (id: string, mid: string) => `${c(id)}/messages/${enc(mid)}/file`;

export async function socketUrl(path: string): Promise<string | null> {
  const token = await freshAccessToken();
  if (!token) return null;
  const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${window.location.host}${path}?access_token=${enc(token)}`;
}

export const chatSocketPath = (id: string) => `${c(id)}/chat`;

// -- sessions, rooms, recordings -----------------------------------------------------------------------

/** What a room needs of its session (POST …/sessions, POST /sessions/{sid}/end). */
export interface SessionAccess {
  consult_id: string;
  session_id: string;
  host_user_id: string;
  participants: { user_id: string; display_name: string; role: string }[];
  ended: boolean;
}

export const startSession = (id: string) => post<SessionAccess>(`${c(id)}/sessions`, {});
export const endSession = (sid: string) => post<SessionAccess>(`${BASE}/sessions/${enc(sid)}/end`, {});
export const signalSocketPath = (sid: string) => `${BASE}/sessions/${enc(sid)}/signal`;
export const listRecordings = (id: string) => apiJson<Recording[]>(`${c(id)}/recordings`);
export const recordingFilePath = (rid: string) => `${BASE}/recordings/${enc(rid)}/file`;

export async function iceServers(): Promise<RTCIceServer[]> {
  const body = await apiJson<RTCIceServer[] | { ice_servers?: RTCIceServer[]; iceServers?: RTCIceServer[] }>(
    `${BASE}/ice-servers`,
  );
  if (Array.isArray(body)) return body;
  return body.ice_servers ?? body.iceServers ?? [];
}

// -- downloads and uploads -----------------------------------------------------------------------------

/** Fetch a protected file with the bearer token and hand it to the browser as a download. */
export async function download(path: string, fallbackName: string): Promise<void> {
  const response = await apiFetch(path, { headers: { Accept: "*/*" } });
  if (!response.ok) throw await ApiError.from(response);
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  const plain = /filename="?([^";]+)"?/i.exec(disposition);
  const name = star?.[1] ? decodeURIComponent(star[1]) : (plain?.[1] ?? fallbackName);
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A protected image as an object URL (chat pictures), for an <img>. */
export async function objectUrl(path: string): Promise<string> {
  const response = await apiFetch(path, { headers: { Accept: "*/*" } });
  if (!response.ok) throw await ApiError.from(response);
  return URL.createObjectURL(await response.blob());
}

export interface UploadHandle<T> {
  promise: Promise<T>;
  abort: () => void;
}

/** multipart POST with upload progress (XMLHttpRequest: fetch has none). */
function upload<T>(path: string, form: FormData, onProgress: (loaded: number, total: number) => void): UploadHandle<T> {
  const xhr = new XMLHttpRequest();
  let aborted = false;
  const promise = freshAccessToken().then(
    (token) =>
      new Promise<T>((resolve, reject) => {
        if (aborted) {
          reject(new DOMException("aborted", "AbortError"));
          return;
        }
        xhr.open("POST", path);
        if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
        xhr.setRequestHeader("Accept", "application/json");
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable) onProgress(e.loaded, e.total);
        };
        xhr.onerror = () => reject(new NetworkError(new Error("upload failed")));
        xhr.onabort = () => reject(new DOMException("aborted", "AbortError"));
        xhr.onload = () => {
          let body: Record<string, unknown> = {};
          try {
            const parsed: unknown = JSON.parse(xhr.responseText);
            if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
          } catch {
            // not JSON
          }
          if (xhr.status >= 200 && xhr.status < 300) resolve(body as unknown as T);
          else reject(errorFromBody(xhr.status, xhr.statusText, body));
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

function errorFromBody(status: number, statusText: string, body: Record<string, unknown>): ApiError {
  const code = typeof body.error === "string" ? body.error : `http_${status}`;
  let detail = statusText;
  if (typeof body.detail === "string") detail = body.detail;
  else if (Array.isArray(body.detail)) {
    detail = body.detail
      .map((d: unknown) => (d && typeof d === "object" && "msg" in d ? String((d as { msg: unknown }).msg) : String(d)))
      .join("; ");
  }
  return new ApiError(status, code, detail, null, body);
}
