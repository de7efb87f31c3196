/** Small shared pieces of the consult pages: chips, deadlines counting down, times, who-is-who. */
import { useEffect, useState } from "react";
import type { User } from "../api/session";
import { useFacilityLabel } from "../shell/facility";
import { ApiError } from "../api/errors";
import { formatTime, useI18n, type Dictionary } from "../i18n";
import { Icon } from "../ui/Icon";
import { errorMessage } from "../ui/states";
import type { Consult, ConsultStatus, ConsultSummary, Urgency } from "./api";

export function StatusChip({ status }: { status: ConsultStatus }) {
  const { t } = useI18n();
  return (
    <span className={`badge cs-status cs-status-${status}`} data-testid="consult-status" data-status={status}>
      {t.consult.status[status] ?? status}
    </span>
  );
}

export function UrgencyBadge({ urgency }: { urgency: Urgency }) {
  const { t } = useI18n();
  return (
    <span className={`badge cs-urgency cs-urgency-${urgency}`} data-testid="consult-urgency" data-urgency={urgency}>
      {t.consult.urgency[urgency] ?? urgency}
    </span>
  );
}

/** "2026-03-01 14:05" in Beijing time. */
export function useDateTime() {
  const { locale } = useI18n();
  return (iso: string | null | undefined) => (iso ? formatTime(new Date(iso), locale, true) : "—");
}

/** The current time, ticking every ``ms`` (for countdowns). */
export function useNow(ms = 30_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

export function useDuration() {
  const { t } = useI18n();
  return (ms: number) => {
    const minutes = Math.max(0, Math.floor(Math.abs(ms) / 60000));
    if (minutes < 60) return t.consult.duration.minutes(minutes);
    if (minutes < 48 * 60) return t.consult.duration.hours(Math.floor(minutes / 60), minutes % 60);
    return t.consult.duration.days(Math.floor(minutes / 1440), Math.floor((minutes % 1440) / 60));
  };
}

/** The deadline that matters in this state: answering while submitted, the opinion once accepted. */
export function activeDeadline(c: ConsultSummary): { kind: "respond" | "opinion"; at: string } | null {
  if (c.status === "submitted" && c.respond_by) return { kind: "respond", at: c.respond_by };
  if (["accepted", "scheduled", "in_session", "opinion_written"].includes(c.status) && c.opinion_by) {
    return { kind: "opinion", at: c.opinion_by };
  }
  return null;
}

export function Deadline({ consult, now, withLabel = false }: { consult: ConsultSummary; now: number; withLabel?: boolean }) {
  const { t } = useI18n();
  const duration = useDuration();
  const d = activeDeadline(consult);
  if (!d) return <span className="muted">{t.consult.deadline.none}</span>;
  const left = new Date(d.at).getTime() - now;
  const over = left < 0 || Boolean(consult.overdue);
  return (
    <span className={`cs-deadline${over ? " overdue" : left < 30 * 60000 ? " soon" : ""}`} data-testid="consult-deadline" data-overdue={over}>
      {withLabel ? <span className="muted">{t.consult.deadline[d.kind]}：</span> : null}
      {over ? t.consult.deadline.overdue(duration(left)) : t.consult.deadline.left(duration(left))}
      {consult.escalation_level ? <span className="cs-escalated"> · {t.consult.deadline.escalated(consult.escalation_level)}</span> : null}
    </span>
  );
}

/** A facility's name (the user's own, else from the region's directory); "—" for none. */
export function useFacilityName() {
  const label = useFacilityLabel();
  return (id: string | null | undefined) => (id ? label(id) : "—");
}

/** Who the user is for this consult: the service's ``my_roles`` (requesting, target, consultant, requester, invitee). */
export function sideOf(c: Consult, user: User) {
  const roles = c.my_roles;
  const requester = roles.includes("requesting") || roles.includes("requester") || c.requester_id === user.id;
  const consultant = roles.includes("consultant") || (c.consultant_id !== null && c.consultant_id === user.id);
  const targetSide = roles.includes("target");
  const participant = requester || consultant || roles.includes("invitee");
  return { requester, consultant, targetSide, participant };
}

export function patientLine(c: ConsultSummary, t: ReturnType<typeof useI18n>["t"]): string {
  const parts = [c.patient_sex ? (t.consult.sex[c.patient_sex] ?? c.patient_sex) : "", c.patient_age != null ? t.consult.list.years(c.patient_age) : ""];
  return parts.filter(Boolean).join(" ");
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function ProgressBar({ value, label, testId }: { value: number; label?: string; testId?: string }) {
  const pct = Math.max(0, Math.min(100, Math.round(value * 100)));
  return (
    <div className="cs-progress" data-testid={testId} data-value={pct}>
      <div className="cs-progress-track" role="progressbar" aria-valuenow={pct} aria-valuemin={0} aria-valuemax={100}>
        <div className="cs-progress-bar" style={{ width: `${pct}%` }} />
      </div>
      {label ? <span className="small muted">{label}</span> : null}
    </div>
  );
}

/** The message for a failed consult request, in the user's language (known codes and statuses first). */
export function consultError(err: unknown, t: Dictionary): string {
  if (err instanceof ApiError) {
    const te = t.consult.errors;
    const known = te[err.code];
    if (known) return known;
    const detail = err.detail ? `（${err.detail}）` : "";
    if (err.status === 404) return te.not_found ?? errorMessage(err, t);
    if (err.status === 403) return te.forbidden ?? errorMessage(err, t);
    if (err.status === 409) return `${te.conflict ?? ""}${detail}`;
    if (err.status === 413) return te.too_large ?? errorMessage(err, t);
    if (err.status === 400 || err.status === 422) return `${te.invalid ?? ""}${detail}`;
  }
  return errorMessage(err, t);
}

/** ErrorState with the consult pages' messages. */
export function ConsultErrorState({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { t } = useI18n();
  return (
    <div className="state state-error" role="alert" data-testid="error-state">
      <Icon name="alert" />
      <span>{consultError(error, t)}</span>
      {onRetry ? (
        <button type="button" className="btn btn-secondary btn-small" onClick={onRetry}>
          {t.common.retry}
        </button>
      ) : null}
    </div>
  );
}
