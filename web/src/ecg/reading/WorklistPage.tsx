/** The reading centre's ECG worklist: critical first, then stat / urgent / routine, then the longest waiting. */
import { useCallback, useEffect, useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { useI18n } from "../../i18n";
import { useFacilityLabel } from "../../shell/facility";
import { EmptyState, ErrorState, Loading } from "../../ui/states";
import { getWorklist, type WorklistItem } from "../api";
import { useEcgAlerts } from "../alerts/AlertsProvider";
import { CriticalBadge, PriorityBadge, StatusBadge, durationText, overdue, useAge } from "../format";
import { ageOf, usePatients } from "../patients";

type Tab = "open" | "signed";

export function WorklistPage() {
  const { t, lang } = useI18n();
  const tw = t.ecg.worklist;
  const navigate = useNavigate();
  const age = useAge();
  const facilityLabel = useFacilityLabel();
  const { alerts } = useEcgAlerts();
  const [tab, setTab] = useState<Tab>("open");
  const [items, setItems] = useState<WorklistItem[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);

  const load = useCallback(() => {
    getWorklist({ status: tab === "signed" ? ["signed"] : undefined, limit: 200 })
      .then((page) => {
        setItems(page.items);
        setError(null);
      })
      .catch((err: unknown) => setError(err));
  }, [tab]);

  useEffect(() => {
    setItems(null);
  }, [tab]);
  useEffect(() => {
    load();
  }, [load, tick, alerts.length]);
  useEffect(() => {
    const timer = setInterval(() => setTick((n) => n + 1), 20_000);
    return () => clearInterval(timer);
  }, []);

  const patients = usePatients(items?.map((r) => r.patient_id) ?? []);
  const open = (id: string) => navigate(`/ecg/reading/${id}`);
  const findingLabel = (code: string | null | undefined) => (code ? (t.ecg.findings[code] ?? code) : null);
  const counts = {
    critical: items?.filter((i) => i.critical && i.status !== "signed").length ?? 0,
    total: items?.length ?? 0,
  };

  return (
    <div className="page ecg-page ecg-page-wide" data-testid="area-page-ecgReading">
      <header className="page-header page-header-row">
        <div>
          <h1>{tw.title}</h1>
          <p className="muted">{tw.summary}</p>
        </div>
        <Link to="/ecg/duty" className="btn btn-secondary worklist-duty" data-testid="ecg-duty-link">
          {t.ecg.duty.link}
        </Link>
        {items && tab === "open" ? (
          <div className="worklist-counts" data-testid="worklist-counts">
            <span className="count-box">
              <strong>{counts.total}</strong>
              {tw.waiting}
            </span>
            <span className={`count-box${counts.critical ? " critical" : ""}`}>
              <strong>{counts.critical}</strong>
              {t.ecg.critical}
            </span>
          </div>
        ) : null}
      </header>
      <section className="panel">
        <div className="tabs" role="tablist">
          {(["open", "signed"] as Tab[]).map((k) => (
            <button
              key={k}
              type="button"
              role="tab"
              aria-selected={tab === k}
              className={tab === k ? "tab active" : "tab"}
              onClick={() => setTab(k)}
              data-testid={`worklist-tab-${k}`}
            >
              {tw.tabs[k]}
            </button>
          ))}
        </div>
        {error && !items ? (
          <ErrorState error={error} onRetry={load} />
        ) : !items ? (
          <Loading />
        ) : items.length === 0 ? (
          <EmptyState title={tab === "open" ? tw.empty : tw.emptySigned} />
        ) : (
          <table className="data-table ecg-table worklist" data-testid="ecg-worklist">
            <thead>
              <tr>
                <th>{tw.priority}</th>
                <th>{tw.patient}</th>
                <th>{tw.facility}</th>
                <th>{tw.waited}</th>
                <th>{tw.recording}</th>
                <th>{tw.status}</th>
                <th aria-label={tw.read} />
              </tr>
            </thead>
            <tbody>
              {items.map((r) => {
                const p = r.patient_id ? patients[r.patient_id] : undefined;
                const years = ageOf(p?.birth_date);
                const late = overdue(r);
                return (
                  <tr
                    key={r.id}
                    className={`clickable${r.critical && r.status !== "signed" ? " row-critical" : ""}`}
                    onClick={() => open(r.id)}
                    data-testid="worklist-row"
                    data-id={r.id}
                    data-critical={r.critical ? "true" : "false"}
                    data-priority={r.priority}
                  >
                    <td>
                      <span className="cell-badges">
                        {r.critical ? <CriticalBadge label={findingLabel(r.finding)} /> : null}
                        <PriorityBadge priority={r.priority} />
                      </span>
                    </td>
                    <td>
                      {p ? (
                        <>
                          <strong>{p.name}</strong>
                          <span className="muted">
                            {" "}
                            {t.ecg.sex[p.sex] ?? ""}
                            {years !== null ? ` ${t.ecg.list.years(years)}` : ""}
                          </span>
                        </>
                      ) : (
                        <span className="muted">{r.patient_id ? "…" : t.ecg.list.noPatient}</span>
                      )}
                    </td>
                    <td data-testid="worklist-facility">{facilityLabel(r.facility_id)}</td>
                    <td className={late ? "late nowrap" : "nowrap"} title={late ? tw.overdue : undefined}>
                      {age(r.received_at)}
                      {late ? " ⏰" : ""}
                    </td>
                    <td>
                      {r.source_format.toUpperCase()} · {t.ecg.list.leads(r.lead_names.length)} · {durationText(r.duration_s, lang)}
                    </td>
                    <td>
                      <span className="cell-badges">
                        <StatusBadge status={r.status} />
                        {r.status === "in_review" && r.reader_name ? <span className="muted">{r.reader_name}</span> : null}
                      </span>
                    </td>
                    <td>
                      <button
                        type="button"
                        className="btn btn-secondary btn-small"
                        onClick={(e) => {
                          e.stopPropagation();
                          open(r.id);
                        }}
                        data-testid="worklist-open"
                      >
                        {r.status === "signed" ? tw.view : tw.read}
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
