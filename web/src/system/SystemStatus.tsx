import { useCallback, useEffect, useState } from "react";
import { formatTime, useI18n } from "../i18n";
import { Icon } from "../ui/Icon";
import { EmptyState, ErrorState, Loading } from "../ui/states";
import { fetchReadiness, type Readiness } from "./readiness";

type Load = { kind: "loading" } | { kind: "error"; error: unknown } | { kind: "done"; data: Readiness };

/** Live readiness of the gateway and the services (GET /readyz); `compact` for the home card. */
export function SystemStatus({ compact = false }: { compact?: boolean }) {
  const { t, locale } = useI18n();
  const [load, setLoad] = useState<Load>({ kind: "loading" });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);

  useEffect(() => {
    const controller = new AbortController();
    setLoad({ kind: "loading" });
    fetchReadiness(controller.signal)
      .then((data) => setLoad({ kind: "done", data }))
      .catch((error: unknown) => {
        if (!controller.signal.aborted) setLoad({ kind: "error", error });
      });
    return () => controller.abort();
  }, [tick]);

  const componentLabel = (name: string) => t.system.services[name] ?? name;
  const checkLabel = (name: string | null) => (name === null ? "" : (t.system.checks[name] ?? name));

  return (
    <section className={compact ? "system-status compact" : "system-status"} data-testid="system-status">
      {load.kind === "loading" ? <Loading /> : null}
      {load.kind === "error" ? <ErrorState error={load.error} onRetry={reload} /> : null}
      {load.kind === "done" ? (
        <>
          <div
            className={load.data.ready ? "status-summary ok" : "status-summary failed"}
            data-testid="system-status-summary"
            data-ready={load.data.ready}
          >
            <span className="dot" aria-hidden="true" />
            <strong>{load.data.ready ? t.system.overallReady : t.system.overallNotReady}</strong>
            <span className="muted">{t.system.checkedAt(formatTime(load.data.checkedAt, locale))}</span>
            {!compact ? (
              <button type="button" className="btn btn-secondary btn-small" onClick={reload} data-testid="system-status-refresh">
                <Icon name="refresh" size={16} />
                <span>{t.system.refresh}</span>
              </button>
            ) : null}
          </div>
          {load.data.rows.length === 0 ? (
            <EmptyState />
          ) : compact ? (
            <ul className="status-grid">
              {load.data.rows.map((row) => (
                <li key={`${row.component}/${row.check ?? ""}`} data-testid={`system-status-row-${row.component}-${row.check ?? "all"}`}>
                  <span>
                    {componentLabel(row.component)}
                    {row.check ? <span className="muted"> · {checkLabel(row.check)}</span> : null}
                  </span>
                  <span className={row.ok ? "pill pill-ok" : "pill pill-failed"}>{row.ok ? t.system.ok : t.system.failed}</span>
                </li>
              ))}
            </ul>
          ) : (
            <table className="status-table">
              <thead>
                <tr>
                  <th scope="col">{t.system.component}</th>
                  <th scope="col">{t.system.state}</th>
                </tr>
              </thead>
              <tbody>
                {load.data.rows.map((row) => (
                  <tr key={`${row.component}/${row.check ?? ""}`} data-testid={`system-status-row-${row.component}-${row.check ?? "all"}`}>
                    <td>
                      {componentLabel(row.component)}
                      {row.check ? <span className="muted"> · {checkLabel(row.check)}</span> : null}
                    </td>
                    <td>
                      <span className={row.ok ? "pill pill-ok" : "pill pill-failed"}>
                        {row.ok ? t.system.ok : t.system.failed}
                      </span>
                      {!row.ok && row.detail ? <span className="muted status-detail">{row.detail}</span> : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      ) : null}
    </section>
  );
}

export function SystemStatusPage() {
  const { t } = useI18n();
  return (
    <div className="page" data-testid="area-page-systemStatus">
      <header className="page-header">
        <h1>{t.system.title}</h1>
        <p className="muted">{t.areas.systemStatus.summary}</p>
      </header>
      <div className="panel">
        <SystemStatus />
      </div>
    </div>
  );
}
