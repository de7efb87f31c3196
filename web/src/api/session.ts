/**
 * The signed-in session: tokens, the user, and transparent refresh.
 *
 * The access token lives only in memory; the refresh token in sessionStorage (this tab only), so a reload
 * restores the session and closing the tab ends it. The access token is refreshed shortly before it
 * expires and once more on any 401; when refresh fails the session ends and the app returns to login.
 */
import { ApiError, NetworkError, send } from "./errors";

export type Role =
  | "township_doctor"
  | "technician"
  | "specialist"
  | "public_health"
  | "facility_admin"
  | "bureau_analyst"
  | "platform_admin";

export interface Facility {
  id: string;
  name_zh: string;
  name_en: string;
  kind: string;
}

export interface User {
  id: string;
  username: string;
  display_name: string;
  roles: Role[];
  facility: Facility;
}

interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  user?: User;
}

export type SessionState =
  | { status: "restoring" }
  | { status: "anonymous"; reason?: "expired" | "logged_out" | "unavailable" }
  | { status: "authenticated"; user: User };

const REFRESH_KEY = "th.refresh";
/** Refresh this long before expiry (capped at a fifth of the lifetime for short tokens). */
const REFRESH_LEAD_MS = 60_000;

let state: SessionState = { status: "restoring" };
let accessToken: string | null = null;
let expiresAt = 0;
let refreshTimer: ReturnType<typeof setTimeout> | null = null;
let refreshing: Promise<void> | null = null;
const listeners = new Set<() => void>();

function setState(next: SessionState): void {
  state = next;
  for (const listener of listeners) listener();
}

export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function getSession(): SessionState {
  return state;
}

function storedRefreshToken(): string | null {
  try {
    return window.sessionStorage.getItem(REFRESH_KEY);
  } catch {
    return null;
  }
}

function storeRefreshToken(token: string | null): void {
  try {
    if (token) window.sessionStorage.setItem(REFRESH_KEY, token);
    else window.sessionStorage.removeItem(REFRESH_KEY);
  } catch {
    // storage disabled: the session simply does not survive a reload
  }
}

function clearTokens(): void {
  accessToken = null;
  expiresAt = 0;
  if (refreshTimer !== null) clearTimeout(refreshTimer);
  refreshTimer = null;
  storeRefreshToken(null);
}

function scheduleRefresh(expiresInSeconds: number): void {
  if (refreshTimer !== null) clearTimeout(refreshTimer);
  const lifetime = expiresInSeconds * 1000;
  const lead = Math.min(REFRESH_LEAD_MS, lifetime / 5);
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    refreshSession().catch(() => undefined);
  }, Math.max(1000, lifetime - lead));
}

async function postToken(form: Record<string, string>): Promise<TokenResponse> {
  const response = await send("/auth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams(form).toString(),
  });
  if (!response.ok) throw await ApiError.from(response);
  return (await response.json()) as TokenResponse;
}

async function fetchMe(): Promise<User> {
  const response = await send("/auth/me", {
    headers: { Accept: "application/json", Authorization: `Bearer ${accessToken ?? ""}` },
  });
  if (!response.ok) throw await ApiError.from(response);
  const body = (await response.json()) as User | { user: User };
  return "user" in body ? body.user : body;
}

async function accept(tokens: TokenResponse): Promise<void> {
  accessToken = tokens.access_token;
  expiresAt = Date.now() + tokens.expires_in * 1000;
  storeRefreshToken(tokens.refresh_token);
  scheduleRefresh(tokens.expires_in);
  const user = tokens.user ?? (await fetchMe());
  setState({ status: "authenticated", user });
}

/** Sign in. Throws ApiError: 401 `mfa_required` asks for the TOTP code; re-call with `totp`. */
export async function login(username: string, password: string, totp?: string): Promise<void> {
  const form: Record<string, string> = { grant_type: "password", username, password };
  if (totp) form.totp = totp;
  await accept(await postToken(form));
}

function isRejection(err: unknown): boolean {
  return err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429;
}

/** Trade the refresh token for a new pair; concurrent callers share one request. */
export function refreshSession(): Promise<void> {
  if (refreshing) return refreshing;
  const token = storedRefreshToken();
  if (!token) {
    clearTokens();
    setState({ status: "anonymous", reason: "expired" });
    return Promise.reject(new ApiError(401, "no_session", "no refresh token", null, {}));
  }
  refreshing = postToken({ grant_type: "refresh_token", refresh_token: token })
    .then(accept)
    .catch((err: unknown) => {
      if (isRejection(err)) {
        clearTokens();
        setState({ status: "anonymous", reason: "expired" });
      }
      throw err;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** On page load: resume the tab's session from its refresh token, if there is one. */
export async function restoreSession(): Promise<void> {
  if (!storedRefreshToken()) {
    setState({ status: "anonymous" });
    return;
  }
  try {
    await refreshSession();
  } catch (err) {
    if (!isRejection(err)) setState({ status: "anonymous", reason: "unavailable" });
  }
}

/** Sign out: revoke the refresh token at the gateway (best effort) and forget everything. */
export async function logout(): Promise<void> {
  const token = storedRefreshToken();
  const bearer = accessToken;
  clearTokens();
  try {
    if (token) {
      await send("/auth/logout", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}),
        },
        body: JSON.stringify({ refresh_token: token }),
      });
    }
  } catch {
    // the gateway is unreachable: the tokens are gone from this tab all the same
  } finally {
    setState({ status: "anonymous", reason: "logged_out" });
  }
}

/**
 * fetch for the platform's APIs with the access token; refreshes first when the token is about to
 * expire (timers sleep in background tabs) and retries once after a 401.
 */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  if (accessToken && Date.now() > expiresAt - 10_000) await refreshSession().catch(() => undefined);
  const attempt = () => {
    const headers = new Headers(init.headers);
    if (accessToken) headers.set("Authorization", `Bearer ${accessToken}`);
    if (!headers.has("Accept")) headers.set("Accept", "application/json");
    return send(path, { ...init, headers });
  };
  const response = await attempt();
  if (response.status !== 401 || !storedRefreshToken()) return response;
  await refreshSession();
  return attempt();
}

/**
 * The access token, refreshed first when about to expire, for what cannot go through apiFetch:
 * XMLHttpRequest uploads (for their progress events) and WebSockets (token in the query string).
 */
export async function freshAccessToken(): Promise<string | null> {
  if (accessToken && Date.now() > expiresAt - 10_000) await refreshSession().catch(() => undefined);
  return accessToken;
}

/** GET/POST JSON through apiFetch; a non-2xx answer throws ApiError. */
export async function apiJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await apiFetch(path, init);
  if (!response.ok) throw await ApiError.from(response);
  return (await response.json()) as T;
}

export { ApiError, NetworkError };
