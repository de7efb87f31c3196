/** Small shared pieces of the admin pages: names, times, badges. */
import type { ReactNode } from "react";
import { useI18n, type Lang } from "../i18n";
import type { FacilityKind, FacilityRef } from "./api";

export function nameOf(f: Pick<FacilityRef, "name_zh" | "name_en">, lang: Lang): string {
  return (lang === "en" ? f.name_en : f.name_zh) || f.name_zh || f.name_en;
}

/** The other language's name, shown muted beside the first (blank when the same or missing). */
export function otherNameOf(f: Pick<FacilityRef, "name_zh" | "name_en">, lang: Lang): string {
  const other = lang === "en" ? f.name_zh : f.name_en;
  return other && other !== nameOf(f, lang) ? other : "";
}

const SHANGHAI_PARTS: Intl.DateTimeFormatOptions = {
  timeZone: "Asia/Shanghai",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
};

function parts(date: Date): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of new Intl.DateTimeFormat("en-CA", SHANGHAI_PARTS).formatToParts(date)) out[p.type] = p.value;
  return out;
}

/** "2026-03-01 14:05:09" in Beijing time (the same in both languages: it is a record's timestamp). */
export function shanghaiDateTime(iso: string | Date, withSeconds = true): string {
  const p = parts(typeof iso === "string" ? new Date(iso) : iso);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}${withSeconds ? `:${p.second}` : ""}`;
}

/** The value for an <input type="datetime-local"> showing ``date`` in Beijing time ("2026-03-01T14:05"). */
export function toShanghaiLocalInput(date: Date): string {
  const p = parts(date);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** A datetime-local value read as Beijing time, as ISO 8601 with its offset ("2026-03-01T14:05:00+08:00"). */
export function fromShanghaiLocalInput(value: string): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return undefined;
  return `${value.length === 16 ? `${value}:00` : value}+08:00`;
}

export function KindBadge({ kind }: { kind: FacilityKind | string }) {
  const { t } = useI18n();
  return (
    <span className={`badge adm-kind adm-kind-${kind}`} data-testid="facility-kind" data-kind={kind}>
      {t.admin.kinds[kind] ?? kind}
    </span>
  );
}

export function LevelBadge({ level }: { level: string | null }) {
  const { t } = useI18n();
  if (!level) return null;
  return (
    <span className="badge adm-level" data-testid="facility-level" data-level={level}>
      {t.admin.levels[level] ?? level}
    </span>
  );
}

export function Field({
  label,
  error,
  hint,
  name,
  children,
}: {
  label: ReactNode;
  error?: string;
  hint?: ReactNode;
  name: string;
  children: ReactNode;
}) {
  return (
    <label className={error ? "adm-field adm-field-invalid" : "adm-field"} data-field={name}>
      <span className="adm-label">{label}</span>
      {children}
      {error ? (
        <span className="adm-field-error" role="alert" data-testid={`field-error-${name}`}>
          {error}
        </span>
      ) : hint ? (
        <span className="adm-hint">{hint}</span>
      ) : null}
    </label>
  );
}

/** A pause for search-as-you-type. */
export const SEARCH_DELAY_MS = 300;
