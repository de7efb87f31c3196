import { ApiError, NetworkError } from "../api/errors";
import { formatTime, type Dictionary } from "../i18n";

function shanghaiDay(date: Date): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(date);
}

/** When a locked account opens again: `locked_until` in the body, else Retry-After. */
function lockedUntil(err: ApiError): Date | null {
  for (const key of ["locked_until", "until", "unlock_at"]) {
    const value = err.body[key];
    if (typeof value === "string" && !Number.isNaN(Date.parse(value))) return new Date(value);
  }
  const seconds = typeof err.body.retry_after === "number" ? err.body.retry_after : err.retryAfter;
  return seconds !== null ? new Date(Date.now() + seconds * 1000) : null;
}

/** What the login page says for a failed attempt, in the current language. */
export function loginErrorMessage(err: unknown, step: "password" | "totp", t: Dictionary, locale: string): string {
  const e = t.login.errors;
  if (err instanceof NetworkError) return t.common.networkError;
  if (!(err instanceof ApiError)) return t.common.unknownError;
  if (err.code === "locked" || err.status === 423) {
    const until = lockedUntil(err);
    if (!until) return e.lockedNoTime;
    return e.locked(formatTime(until, locale, shanghaiDay(until) !== shanghaiDay(new Date())));
  }
  if (err.status === 429) return err.retryAfter !== null ? e.rateLimited(err.retryAfter) : e.rateLimitedNoTime;
  if (err.code === "disabled" || err.code === "account_disabled") return e.disabled;
  if (err.code === "mfa_not_enrolled") return e.mfaNotEnrolled;
  // a wrong code is 401 invalid_grant, like a wrong password: the step tells which was asked for
  if (err.code === "invalid_totp" || (step === "totp" && err.status === 401)) return e.badTotp;
  if (err.status === 401 || err.status === 400 || err.status === 403) return e.badCredentials;
  if (err.status >= 500) return t.common.unavailable;
  return err.detail || t.common.unknownError;
}
