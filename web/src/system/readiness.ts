/** GET /readyz: the gateway's own checks and, when the gateway reports them, each service's. */
import { ApiError } from "../api/errors";
import { apiFetch } from "../api/session";

export interface ComponentStatus {
  /** "gateway" or a service name. */
  component: string;
  /** A check name (database, redis, storage) or null for the component as a whole. */
  check: string | null;
  ok: boolean;
  /** The server's text when not ok. */
  detail: string | null;
}

export interface Readiness {
  ready: boolean;
  rows: ComponentStatus[];
  checkedAt: Date;
}

type CheckMap = Record<string, unknown>;

function isOk(value: unknown): boolean {
  if (value === "ok" || value === "ready" || value === true) return true;
  if (value && typeof value === "object") {
    const status = (value as Record<string, unknown>).status;
    return status === "ok" || status === "ready";
  }
  return false;
}

function detailOf(value: unknown): string | null {
  if (isOk(value)) return null;
  if (typeof value === "string") return value;
  if (value && typeof value === "object") {
    const v = value as Record<string, unknown>;
    if (typeof v.detail === "string") return v.detail;
    if (typeof v.error === "string") return v.error;
    if (typeof v.status === "string") return v.status;
  }
  return null;
}

/** A check's row; the gateway reports each service as a check named `service:<name>` ("ok" or "down: …"). */
function rowOf(component: string, check: string, value: unknown): ComponentStatus {
  const service = /^service:(.+)$/.exec(check);
  if (service?.[1]) return { component: service[1], check: null, ok: isOk(value), detail: detailOf(value) };
  return { component, check, ok: isOk(value), detail: detailOf(value) };
}

function rowsOf(component: string, body: Record<string, unknown>): ComponentStatus[] {
  const checks = body.checks && typeof body.checks === "object" ? (body.checks as CheckMap) : null;
  if (!checks) return [{ component, check: null, ok: isOk(body), detail: detailOf(body) }];
  const rows = Object.entries(checks).map(([check, value]) => rowOf(component, check, value));
  // the gateway's own checks first, then the services
  return [...rows.filter((r) => r.check !== null), ...rows.filter((r) => r.check === null)];
}

export function parseReadiness(body: Record<string, unknown>): Readiness {
  const rows = rowsOf(typeof body.service === "string" ? body.service : "gateway", body);
  const services = body.services && typeof body.services === "object" ? (body.services as CheckMap) : {};
  for (const [name, value] of Object.entries(services)) {
    if (value && typeof value === "object") rows.push(...rowsOf(name, value as Record<string, unknown>));
    else rows.push({ component: name, check: null, ok: isOk(value), detail: detailOf(value) });
  }
  const ready = (body.status === "ready" || body.status === "ok") && rows.every((row) => row.ok);
  return { ready, rows, checkedAt: new Date() };
}

export async function fetchReadiness(signal?: AbortSignal): Promise<Readiness> {
  const response = await apiFetch("/readyz", { signal });
  // 503 still carries the checks: that is the interesting case
  if (!response.ok && response.status !== 503) throw await ApiError.from(response);
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    throw await ApiError.from(response);
  }
  if (!body || typeof body !== "object") throw new ApiError(response.status, "bad_response", "", null, {});
  return parseReadiness(body as Record<string, unknown>);
}
