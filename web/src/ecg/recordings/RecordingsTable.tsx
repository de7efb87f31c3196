/** The facility's recordings, newest first, with status; refreshes itself while some are being analysed. */
import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { useI18n } from "../../i18n";
import { EmptyState, ErrorState, Loading } from "../../ui/states";
import { listRecordings, type RecordingStatus, type RecordingSummary } from "../api";
import { CriticalBadge, PriorityBadge, StatusBadge, durationText, useDateTime } from "../format";
import { ageOf, usePatients } from "../patients";

export type StatusFilter = "all" | "waiting" | "signed" | "failed";

const FILTERS: Record<StatusFilter, RecordingStatus[] | undefined> = {
  all: undefined,
  waiting: ["new", "analysing", "ready", "in_review"],
  signed: ["signed"],
  failed: ["failed"],
};

export function RecordingsTable({
  filter = "all",
  refreshKey = 0,
  compact = false,
}: {
  filter?: StatusFilter;
  refreshKey?: number;
  compact?: boolean;
}) {
  const { t, lang } = useI18n();
  const tl = t.ecg.list;
  const when = useDateTime();
  const [items, setItems] = useState<RecordingSummary[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);

  const load = useCallback(() => {
    listRecordings({ status: FILTERS[filter], limit: compact ? 10 : 100 })
      .then((page) => {
        setItems(page.items);
        setError(null);
      })
      .catch((err: unknown) => setError(err));
  }, [filter, compact]);

  useEffect(() => {
    load();
  }, [load, refreshKey, tick]);

  // while something is still being analysed, look again every few seconds; otherwise every minute
  const busy = items?.some((r) => r.status === "new" || r.status === "analysing") ?? false;
  useEffect(() => {
    const timer = setInterval(() => setTick((n) => n + 1), busy ? 3000 : 60000);
    return () => clearInterval(timer);
  }, [busy]);

  const patients = usePatients(items?.map((r) => r.patient_id) ?? []);

  if (error && !items) return <ErrorState error={error} onRetry={load} />;
  if (!items) return <Loading />;
  if (items.length === 0) return <EmptyState title={tl.empty}>{tl.emptyHint}</EmptyState>;

  return (
    <table className="data-table ecg-table" data-testid="ecg-recordings">
      <thead>
        <tr>
          <th>{tl.received}</th>
          <th>{tl.patient}</th>
          <th>{tl.recording}</th>
          <th>{tl.priority}</th>
          <th>{tl.status}</th>
          {compact ? null : <th>{tl.report}</th>}
          <th aria-label={tl.open} />
        </tr>
      </thead>
      <tbody>
        {items.map((r) => {
          const p = r.patient_id ? patients[r.patient_id] : undefined;
          const age = ageOf(p?.birth_date);
          return (
            <tr key={r.id} className={r.critical ? "row-critical" : undefined} data-testid="ecg-recording-row" data-id={r.id} data-status={r.status}>
              <td className="nowrap">{when(r.received_at)}</td>
              <td>
                {p ? (
                  <>
                    <strong>{p.name}</strong>
                    <span className="muted">
                      {" "}
                      {t.ecg.sex[p.sex] ?? ""}
                      {age !== null ? ` ${tl.years(age)}` : ""}
                    </span>
                  </>
                ) : r.patient_id ? (
                  <span className="muted">…</span>
                ) : (
                  <span className="muted">{tl.noPatient}</span>
                )}
              </td>
              <td>
                {r.source_format.toUpperCase()} · {tl.leads(r.lead_names.length)} · {durationText(r.duration_s, lang)}
              </td>
              <td>
                <PriorityBadge priority={r.priority} />
              </td>
              <td>
                <span className="cell-badges">
                  <StatusBadge status={r.status} />
                  {r.critical ? <CriticalBadge /> : null}
                </span>
              </td>
              {compact ? null : (
                <td>
                  {r.status === "signed" ? (
                    <span>
                      {r.reader_name ?? ""} <span className="muted">{when(r.signed_at)}</span>
                    </span>
                  ) : r.status === "in_review" ? (
                    <span className="muted">{tl.inReview(r.reader_name ?? "")}</span>
                  ) : (
                    <span className="muted">—</span>
                  )}
                </td>
              )}
              <td className="nowrap">
                <Link to={`/ecg/recordings/${r.id}`} className="btn btn-secondary btn-small" data-testid="ecg-recording-open">
                  {tl.open}
                </Link>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
