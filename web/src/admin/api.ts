/**
 * The gateway's administration and audit APIs (gateway/identity/admin_api.py, gateway/audit/api.py).
 * Platform admins administer everything; facility admins their own facility's subtree (anything else
 * answers 404). Validation problems answer 422 and duplicates 409, with `detail` as "field: message; …".
 */
import { ApiError } from "../api/errors";
import { apiFetch, apiJson, type Role } from "../api/session";

export type FacilityKind = "region" | "hospital" | "township" | "village";

export interface FacilityRef {
  id: string;
  name_zh: string;
  name_en: string;
  kind: FacilityKind;
}

export interface Facility extends FacilityRef {
  parent_id: string | null;
  level: string | null;
  code: string;
  reading_centre_id: string | null;
  active: boolean;
  created_at: string;
  updated_at: string;
}

export interface FacilityNode extends Facility {
  children: FacilityNode[];
}

export interface FacilityCreate {
  parent_id: string | null;
  kind: FacilityKind;
  level: string | null;
  code: string;
  name_zh: string;
  name_en: string;
  reading_centre_id: string | null;
}

export type FacilityUpdate = Partial<Omit<FacilityCreate, "kind" | "parent_id">> & {
  kind?: FacilityKind;
  parent_id?: string | null;
  active?: boolean;
};

/** Which kinds a facility's parent may have (gateway/identity/admin_service.py ALLOWED_PARENTS). */
export const ALLOWED_PARENTS: Record<FacilityKind, (FacilityKind | null)[]> = {
  region: [null, "region"],
  hospital: ["region"],
  township: ["region", "hospital"],
  village: ["township", "hospital"],
};

export const KINDS: FacilityKind[] = ["region", "hospital", "township", "village"];

export function childKinds(parent: FacilityKind | null): FacilityKind[] {
  return KINDS.filter((k) => ALLOWED_PARENTS[k].includes(parent));
}

export interface UserSummary {
  id: string;
  username: string;
  display_name: string;
  facility: FacilityRef;
  roles: Role[];
  active: boolean;
  mfa_enrolled: boolean;
  failed_attempts: number;
  locked_until: string | null;
  last_login_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface TotpEnrolment {
  user_id: string;
  otpauth_uri: string;
  secret: string;
}

export interface UserCreated extends UserSummary {
  totp: TotpEnrolment | null;
}

export interface UserPage {
  items: UserSummary[];
  total: number;
  limit: number;
  offset: number;
}

export interface UserQuery {
  facility_id?: string;
  include_descendants?: boolean;
  role?: Role;
  q?: string;
  active?: boolean;
  limit: number;
  offset: number;
}

export interface UserCreate {
  username: string;
  display_name: string;
  facility_id: string;
  roles: Role[];
  password: string;
}

export interface UserUpdate {
  display_name?: string;
  facility_id?: string;
  roles?: Role[];
  active?: boolean;
}

export const ALL_ROLES: Role[] = [
  "township_doctor",
  "technician",
  "specialist",
  "public_health",
  "facility_admin",
  "bureau_analyst",
  "platform_admin",
];
/** What a facility admin may grant (user_admin_service.FACILITY_ADMIN_GRANTS). */
export const FACILITY_ADMIN_GRANTS: Role[] = ["township_doctor", "technician", "specialist", "public_health", "facility_admin"];
export const ADMIN_ROLES: Role[] = ["facility_admin", "platform_admin"];

export type Outcome = "success" | "failure" | "denied";

export interface AuditRecord {
  seq: number;
  occurred_at: string;
  source: string;
  actor_id: string | null;
  actor_name: string | null;
  actor_role: string | null;
  facility_id: string | null;
  action: string;
  object_type: string | null;
  object_id: string | null;
  outcome: Outcome | string;
  status_code: number | null;
  client_addr: string | null;
  request_id: string | null;
  detail: Record<string, unknown>;
  hash: string;
}

export interface AuditPage {
  items: AuditRecord[];
  next_before_seq: number | null;
}

export interface AuditQuery {
  since?: string;
  until?: string;
  actor_name?: string;
  facility_id?: string;
  action?: string;
  outcome?: Outcome;
  source?: string;
  object_type?: string;
  object_id?: string;
  before_seq?: number;
  limit?: number;
}

export interface ChainVerification {
  ok: boolean;
  checked: number;
  first_bad_seq: number | null;
  problem: string | null;
  verified_at: string;
}

function query(params: object): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

function send<T>(path: string, method: string, body?: unknown): Promise<T> {
  return apiJson<T>(path, {
    method,
    headers: body === undefined ? undefined : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// facilities
export const getFacilityTree = () => apiJson<FacilityNode[]>("/api/admin/facilities");
export const createFacility = (body: FacilityCreate) => send<Facility>("/api/admin/facilities", "POST", body);
export const updateFacility = (id: string, body: FacilityUpdate) =>
  send<Facility>(`/api/admin/facilities/${id}`, "PATCH", body);

// users
export const listUsers = (q: UserQuery) => apiJson<UserPage>(`/api/admin/users${query(q)}`);
export const createUser = (body: UserCreate) => send<UserCreated>("/api/admin/users", "POST", body);
export const updateUser = (id: string, body: UserUpdate) => send<UserSummary>(`/api/admin/users/${id}`, "PATCH", body);
export const deactivateUser = (id: string) => send<UserSummary>(`/api/admin/users/${id}/deactivate`, "POST");
export const resetPassword = (id: string, password: string) =>
  send<UserSummary>(`/api/admin/users/${id}/password`, "POST", { password });
export const unlockUser = (id: string) => send<UserSummary>(`/api/admin/users/${id}/unlock`, "POST");
export const enrolTotp = (id: string) => send<TotpEnrolment>(`/api/admin/users/${id}/totp`, "POST");

// audit
export const searchAudit = (q: AuditQuery) => apiJson<AuditPage>(`/api/audit/events${query(q)}`);
export const verifyChain = () => apiJson<ChainVerification>("/api/audit/verify");

export interface AuditExport {
  blob: Blob;
  count: number;
  /** The Bundle has a `next` link: older matching rows were left for another export. */
  more: boolean;
}

/** The matching rows as a FHIR R4 Bundle of AuditEvents (at most 1000), ready to save as a file. */
export async function exportAudit(q: AuditQuery): Promise<AuditExport> {
  const response = await apiFetch(`/api/audit/export${query({ ...q, before_seq: undefined, limit: 1000 })}`, {
    headers: { Accept: "application/fhir+json" },
  });
  if (!response.ok) throw await ApiError.from(response);
  const text = await response.text();
  let count = 0;
  let more = false;
  try {
    const bundle = JSON.parse(text) as { entry?: unknown[]; total?: number; link?: { relation: string }[] };
    count = bundle.entry?.length ?? 0;
    more = bundle.link?.some((l) => l.relation === "next") ?? false;
  } catch {
    // not JSON: save it as it came
  }
  return { blob: new Blob([text], { type: "application/fhir+json" }), count, more };
}

// helpers over the tree

/** The tree flattened depth-first with each node's depth (for indented lists and pickers). */
export function flattenTree(roots: readonly FacilityNode[]): { node: FacilityNode; depth: number }[] {
  const out: { node: FacilityNode; depth: number }[] = [];
  const walk = (nodes: readonly FacilityNode[], depth: number) => {
    for (const node of [...nodes].sort(byKindThenCode)) {
      out.push({ node, depth });
      walk(node.children, depth + 1);
    }
  };
  walk(roots, 0);
  return out;
}

function byKindThenCode(a: FacilityNode, b: FacilityNode): number {
  return KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind) || a.code.localeCompare(b.code);
}

export function facilityIndex(roots: readonly FacilityNode[]): Map<string, FacilityNode> {
  return new Map(flattenTree(roots).map(({ node }) => [node.id, node]));
}
