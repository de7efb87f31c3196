/** Small shared pieces of the ECG pages: badges, times, statement text, the role checks. */
import type { Role } from "../api/session";
import { formatTime, useI18n, type Lang } from "../i18n";
import type { Priority, RecordingStatus, RecordingSummary, Statement } from "./api";

export function PriorityBadge({ priority }: { priority: Priority }) {
  const { t } = useI18n();
  return (
    <span className={`badge ecg-priority ecg-priority-${priority}`} data-testid="priority-badge" data-priority={priority}>
      {t.ecg.priority[priority]}
    </span>
  );
}

export function StatusBadge({ status }: { status: RecordingStatus }) {
  const { t } = useI18n();
  return (
    <span className={`badge ecg-status ecg-status-${status}`} data-testid="status-badge" data-status={status}>
      {status === "analysing" || status === "new" ? <span className="spinner spinner-inline" aria-hidden="true" /> : null}
      {t.ecg.status[status]}
    </span>
  );
}

export function CriticalBadge({ label }: { label?: string | null }) {
  const { t } = useI18n();
  return (
    <span className="badge ecg-critical-badge" data-testid="critical-badge">
      {t.ecg.critical}
      {label ? `：${label}` : ""}
    </span>
  );
}

/** "2026-03-01 14:05" in Beijing time. */
export function useDateTime() {
  const { locale } = useI18n();
  return (iso: string | null | undefined) => (iso ? formatTime(new Date(iso), locale, true) : "—");
}

/** How long something has waited, in the largest sensible unit ("35 分钟", "3 小时", "2 天"). */
export function useAge() {
  const { t } = useI18n();
  return (iso: string, now = Date.now()) => {
    const minutes = Math.max(0, (now - new Date(iso).getTime()) / 60000);
    if (minutes < 1) return t.ecg.age.justNow;
    if (minutes < 60) return t.ecg.age.minutes(Math.floor(minutes));
    if (minutes < 48 * 60) return t.ecg.age.hours(Math.floor(minutes / 60));
    return t.ecg.age.days(Math.floor(minutes / 1440));
  };
}

/** Turnaround targets by priority (minutes), as the service's defaults (services/ecg/settings.py). */
export const TARGET_MINUTES: Record<Priority, number> = { stat: 30, urgent: 120, routine: 24 * 60 };

export function overdue(rec: RecordingSummary, now = Date.now()): boolean {
  if (rec.status === "signed") return false;
  return (now - new Date(rec.received_at).getTime()) / 60000 > TARGET_MINUTES[rec.priority];
}

export function statementText(st: Statement, lang: Lang): string {
  return (lang === "en" ? st.en || st.zh : st.zh || st.en) || "";
}

export function durationText(seconds: number, lang: Lang): string {
  if (seconds < 90) return lang === "en" ? `${seconds.toFixed(1)} s` : `${seconds.toFixed(1)} 秒`;
  const m = Math.round(seconds / 60);
  if (m < 120) return lang === "en" ? `${m} min` : `${m} 分钟`;
  const h = seconds / 3600;
  return lang === "en" ? `${h.toFixed(1)} h` : `${h.toFixed(1)} 小时`;
}

export const UPLOAD_ROLES: Role[] = ["township_doctor", "technician"];
export const ALERT_ROLES: Role[] = ["township_doctor", "technician", "specialist"];
export const ACK_ROLES: Role[] = ["township_doctor", "specialist"];

export function hasAny(roles: readonly string[], wanted: readonly Role[]): boolean {
  return roles.some((r) => (wanted as readonly string[]).includes(r));
}

export function fileSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}
