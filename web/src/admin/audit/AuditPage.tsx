/**
 * 审计: the hash-chained audit log, newest first. Search by time (Beijing time), actor, facility, action
 * prefix, outcome and source; page on with before_seq; verify the whole chain (platform admin) and export
 * the matching rows as a FHIR R4 Bundle of AuditEvents. A facility admin sees their subtree's rows.
 */
import { Fragment, useCallback, useEffect, useState, type FormEvent } from "react";
import { useUser } from "../../auth/useSession";
import { useI18n } from "../../i18n";
import { useFacilityLabel } from "../../shell/facility";
import { Icon } from "../../ui/Icon";
import { EmptyState, ErrorState, Loading } from "../../ui/states";
import {
  exportAudit,
  searchAudit,
  verifyChain,
  type AuditPage as Page,
  type AuditQuery,
  type AuditRecord,
  type ChainVerification,
  type Outcome,
} from "../api";
import { actionError } from "../errors";
import { FacilitySelect } from "../FacilitySelect";
import { fromShanghaiLocalInput, nameOf, shanghaiDateTime, toShanghaiLocalInput } from "../format";
import { useFacilityTree } from "../useFacilityTree";

interface Filters {
  since: string; // datetime-local values, Beijing time
  until: string;
  actor: string;
  facility: string;
  action: string;
  outcome: Outcome | "";
  source: string;
}

const EMPTY: Filters = { since: "", until: "", actor: "", facility: "", action: "", outcome: "", source: "" };
const SOURCES = ["gateway", "imaging", "ecg", "pathology", "consult", "health_mgmt"];
const OUTCOMES: Outcome[] = ["success", "failure", "denied"];
const PAGE_SIZES = [20, 50, 100, 200];
const ACTION_HINTS = ["auth.", "admin.", "admin.user.", "admin.facility.", "audit.", "GET /api/", "POST /api/", "PATCH /api/"];

function toQuery(f: Filters): AuditQuery {
  return {
    since: f.since ? fromShanghaiLocalInput(f.since) : undefined,
    until: f.until ? fromShanghaiLocalInput(f.until) : undefined,
    actor_name: f.actor.trim() || undefined,
    facility_id: f.facility || undefined,
    action: f.action.trim() || undefined,
    outcome: f.outcome || undefined,
    source: f.source || undefined,
  };
}

function startOfShanghaiDay(now: Date): Date {
  const local = toShanghaiLocalInput(now).slice(0, 10);
  return new Date(`${local}T00:00:00+08:00`);
}

function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function AuditPage() {
  const { t, lang } = useI18n();
  const ta = t.admin.audit;
  const user = useUser();
  const isPlatform = user.roles.includes("platform_admin");
  const tree = useFacilityTree();
  const directoryLabel = useFacilityLabel();

  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [applied, setApplied] = useState<Filters>(EMPTY);
  const [limit, setLimit] = useState(100);
  // before_seq of each page we came through; the last is the current page's (undefined: the newest)
  const [cursors, setCursors] = useState<(number | undefined)[]>([undefined]);
  const [page, setPage] = useState<Page | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const [rangeError, setRangeError] = useState<string | null>(null);
  const [open, setOpen] = useState<Set<number>>(new Set());

  const [verifying, setVerifying] = useState(false);
  const [verification, setVerification] = useState<ChainVerification | null>(null);
  const [verifyError, setVerifyError] = useState<string | null>(null);
  const [exporting, setExporting] = useState(false);
  const [exportNote, setExportNote] = useState<{ count: number; more: boolean } | null>(null);
  const [exportError, setExportError] = useState<string | null>(null);

  const cursor = cursors[cursors.length - 1];
  const reload = useCallback(() => setTick((n) => n + 1), []);

  useEffect(() => {
    let live = true;
    setLoading(true);
    searchAudit({ ...toQuery(applied), before_seq: cursor, limit })
      .then((p) => {
        if (!live) return;
        setPage(p);
        setError(null);
      })
      .catch((err: unknown) => {
        if (live) setError(err);
      })
      .finally(() => {
        if (live) setLoading(false);
      });
    return () => {
      live = false;
    };
  }, [applied, cursor, limit, tick]);

  const apply = (next: Filters) => {
    const since = next.since ? fromShanghaiLocalInput(next.since) : undefined;
    const until = next.until ? fromShanghaiLocalInput(next.until) : undefined;
    if (since && until && new Date(since) >= new Date(until)) {
      setRangeError(ta.badRange);
      return;
    }
    setRangeError(null);
    setApplied(next);
    setCursors([undefined]);
    setOpen(new Set());
    reload();
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    apply(draft);
  };
  const preset = (days: number | "today") => {
    const now = new Date();
    const since = days === "today" ? startOfShanghaiDay(now) : new Date(now.getTime() - days * 86_400_000);
    const next = { ...draft, since: toShanghaiLocalInput(since), until: "" };
    setDraft(next);
    apply(next);
  };

  const verify = async () => {
    setVerifying(true);
    setVerifyError(null);
    setVerification(null);
    try {
      setVerification(await verifyChain());
    } catch (err) {
      setVerifyError(actionError(err, t));
    } finally {
      setVerifying(false);
    }
  };

  const doExport = async () => {
    setExporting(true);
    setExportError(null);
    setExportNote(null);
    try {
      const result = await exportAudit(toQuery(applied));
      const stamp = shanghaiDateTime(new Date()).replace(/[-: ]/g, "").slice(0, 12);
      download(result.blob, `audit-events-${stamp}.fhir.json`);
      setExportNote({ count: result.count, more: result.more });
    } catch (err) {
      setExportError(actionError(err, t));
    } finally {
      setExporting(false);
    }
  };

  const facilityLabel = (id: string | null) => {
    if (!id) return "—";
    const found = tree.byId.get(id);
    return found ? nameOf(found, lang) : directoryLabel(id);
  };
  const problemText = (problem: string | null) => {
    if (!problem) return "";
    for (const [pattern, replacement] of ta.problems) if (pattern.test(problem)) return problem.replace(pattern, replacement);
    return problem;
  };
  const toggleRow = (seq: number) =>
    setOpen((prev) => {
      const next = new Set(prev);
      if (next.has(seq)) next.delete(seq);
      else next.add(seq);
      return next;
    });

  const items = page?.items ?? [];
  const set = <K extends keyof Filters>(key: K) => (value: Filters[K]) => setDraft((d) => ({ ...d, [key]: value }));

  return (
    <div className="page adm-page adm-page-wide" data-testid="area-page-audit">
      <header className="page-header adm-header">
        <div>
          <h1>{ta.title}</h1>
          <p className="muted">{isPlatform ? ta.summary : ta.facilitySummary}</p>
        </div>
        <div className="adm-header-actions">
          {isPlatform ? (
            <button
              type="button"
              className="btn btn-secondary"
              onClick={() => void verify()}
              disabled={verifying}
              data-testid="audit-verify"
            >
              <Icon name="shield" size={18} />
              {verifying ? ta.verifying : ta.verify}
            </button>
          ) : null}
          <button
            type="button"
            className="btn btn-secondary"
            onClick={() => void doExport()}
            disabled={exporting}
            data-testid="audit-export"
          >
            {exporting ? ta.exporting : ta.export}
          </button>
        </div>
      </header>

      {verification ? (
        <div
          className={verification.ok ? "adm-banner adm-banner-ok" : "adm-banner adm-banner-bad"}
          role={verification.ok ? "status" : "alert"}
          data-testid="audit-verify-result"
          data-ok={verification.ok ? "true" : "false"}
          data-checked={verification.checked}
          data-first-bad-seq={verification.first_bad_seq ?? ""}
        >
          <strong>{verification.ok ? ta.verifyOk(verification.checked) : ta.verifyBad(verification.first_bad_seq)}</strong>
          {!verification.ok && verification.problem ? (
            <span data-testid="audit-verify-problem">
              {problemText(verification.problem)}
              {lang === "zh" && problemText(verification.problem) !== verification.problem ? (
                <span className="adm-raw"> ({verification.problem})</span>
              ) : null}
            </span>
          ) : null}
          <span className="adm-small">{ta.verifiedAt(shanghaiDateTime(verification.verified_at))}</span>
        </div>
      ) : null}
      {verifyError ? (
        <p className="form-error" role="alert" data-testid="audit-verify-error">
          {verifyError}
        </p>
      ) : null}
      {exportNote ? (
        <p className={exportNote.more ? "adm-banner adm-banner-warn" : "adm-banner adm-banner-info"} role="status" data-testid="audit-export-note">
          {ta.exported(exportNote.count)}
          {exportNote.more ? ` ${ta.exportedMore}` : ""}
        </p>
      ) : null}
      {exportError ? (
        <p className="form-error" role="alert" data-testid="audit-export-error">
          {exportError}
        </p>
      ) : null}

      <section className="panel adm-panel">
        <form className="adm-audit-filters" onSubmit={submit} data-testid="audit-filters">
          <label className="adm-field">
            <span className="adm-label">{ta.since}</span>
            <input
              className="adm-input"
              type="datetime-local"
              value={draft.since}
              onChange={(e) => set("since")(e.target.value)}
              data-testid="audit-since"
            />
          </label>
          <label className="adm-field">
            <span className="adm-label">{ta.until}</span>
            <input
              className="adm-input"
              type="datetime-local"
              value={draft.until}
              onChange={(e) => set("until")(e.target.value)}
              data-testid="audit-until"
            />
          </label>
          <label className="adm-field">
            <span className="adm-label">{ta.actor}</span>
            <input
              className="adm-input adm-mono"
              value={draft.actor}
              placeholder={ta.actorHint}
              onChange={(e) => set("actor")(e.target.value)}
              data-testid="audit-actor"
              spellCheck={false}
            />
          </label>
          <label className="adm-field">
            <span className="adm-label">{ta.facility}</span>
            <FacilitySelect
              flat={tree.flat}
              value={draft.facility}
              onChange={set("facility")}
              emptyLabel={ta.allFacilities}
              testId="audit-facility"
            />
          </label>
          <label className="adm-field">
            <span className="adm-label">{ta.action}</span>
            <input
              className="adm-input adm-mono"
              value={draft.action}
              placeholder={ta.actionHint}
              list="adm-audit-actions"
              onChange={(e) => set("action")(e.target.value)}
              data-testid="audit-action"
              spellCheck={false}
            />
            <datalist id="adm-audit-actions">
              {[...ACTION_HINTS, ...Object.keys(ta.actions)].map((a) => (
                <option key={a} value={a}>
                  {ta.actions[a] ?? ""}
                </option>
              ))}
            </datalist>
          </label>
          <label className="adm-field">
            <span className="adm-label">{ta.outcome}</span>
            <select
              className="adm-input"
              value={draft.outcome}
              onChange={(e) => set("outcome")(e.target.value as Outcome | "")}
              data-testid="audit-outcome"
            >
              <option value="">{ta.anyOutcome}</option>
              {OUTCOMES.map((o) => (
                <option key={o} value={o}>
                  {ta.outcomes[o]}
                </option>
              ))}
            </select>
          </label>
          <label className="adm-field">
            <span className="adm-label">{ta.source}</span>
            <select
              className="adm-input"
              value={draft.source}
              onChange={(e) => set("source")(e.target.value)}
              data-testid="audit-source"
            >
              <option value="">{ta.anySource}</option>
              {SOURCES.map((s) => (
                <option key={s} value={s}>
                  {ta.sources[s] ?? s}
                </option>
              ))}
            </select>
          </label>
          <div className="adm-audit-buttons">
            <button type="submit" className="btn btn-primary" data-testid="audit-search">
              {ta.search}
            </button>
            <button
              type="button"
              className="btn btn-ghost"
              onClick={() => {
                setDraft(EMPTY);
                apply(EMPTY);
              }}
              data-testid="audit-reset"
            >
              {ta.reset}
            </button>
          </div>
          <div className="adm-audit-presets">
            <button type="button" className="adm-chip" onClick={() => preset("today")} data-testid="audit-preset-today">
              {ta.today}
            </button>
            <button type="button" className="adm-chip" onClick={() => preset(7)} data-testid="audit-preset-7">
              {ta.last7}
            </button>
            <button type="button" className="adm-chip" onClick={() => preset(30)} data-testid="audit-preset-30">
              {ta.last30}
            </button>
            <span className="muted adm-small">{ta.timeZoneNote}</span>
          </div>
          {rangeError ? (
            <p className="adm-field-error adm-range-error" role="alert" data-testid="audit-range-error">
              {rangeError}
            </p>
          ) : null}
        </form>

        {error && !page ? (
          <ErrorState error={error} onRetry={reload} />
        ) : !page ? (
          <Loading />
        ) : (
          <>
            {error ? <ErrorState error={error} onRetry={reload} /> : null}
            {items.length === 0 ? (
              <EmptyState title={ta.empty}>{ta.emptyHint}</EmptyState>
            ) : (
              <table className={loading ? "adm-table adm-audit-table adm-stale" : "adm-table adm-audit-table"} data-testid="audit-table" aria-busy={loading}>
                <thead>
                  <tr>
                    <th>{ta.time}</th>
                    <th className="adm-num">{ta.seq}</th>
                    <th>{ta.actor}</th>
                    <th>{ta.facility}</th>
                    <th>{ta.action}</th>
                    <th>{ta.object}</th>
                    <th>{ta.outcome}</th>
                    <th>{ta.client}</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((r) => (
                    <Fragment key={r.seq}>
                      <AuditRow record={r} open={open.has(r.seq)} onToggle={() => toggleRow(r.seq)} facilityLabel={facilityLabel} />
                    </Fragment>
                  ))}
                </tbody>
              </table>
            )}
            <div className="adm-pager" data-testid="audit-pager">
              <span className="muted" data-testid="audit-page-info">
                {items.length ? ta.pageInfo(items[items.length - 1]!.seq, items[0]!.seq) : ""}
              </span>
              <span className="adm-toolbar-spacer" />
              <label className="adm-check">
                {ta.pageSize}
                <select
                  className="adm-input adm-input-small"
                  value={limit}
                  onChange={(e) => {
                    setLimit(Number(e.target.value));
                    setCursors([undefined]);
                  }}
                  data-testid="audit-page-size"
                >
                  {PAGE_SIZES.map((n) => (
                    <option key={n} value={n}>
                      {n}
                    </option>
                  ))}
                </select>
              </label>
              <button
                type="button"
                className="btn btn-secondary btn-small"
                disabled={cursors.length <= 1 || loading}
                onClick={() => setCursors((c) => c.slice(0, -1))}
                data-testid="audit-newer"
              >
                ← {ta.newer}
              </button>
              <button
                type="button"
                className="btn btn-secondary btn-small"
                disabled={!page.next_before_seq || loading}
                onClick={() => setCursors((c) => [...c, page.next_before_seq ?? undefined])}
                data-testid="audit-older"
              >
                {ta.older} →
              </button>
            </div>
          </>
        )}
      </section>
    </div>
  );
}

function AuditRow({
  record: r,
  open,
  onToggle,
  facilityLabel,
}: {
  record: AuditRecord;
  open: boolean;
  onToggle: () => void;
  facilityLabel: (id: string | null) => string;
}) {
  const { t } = useI18n();
  const ta = t.admin.audit;
  const label = ta.actions[r.action];
  const isRequest = /^[A-Z]+ \//.test(r.action);
  return (
    <>
      <tr
        className={`adm-audit-row adm-outcome-row-${r.outcome}${open ? " adm-open" : ""}`}
        onClick={onToggle}
        data-testid="audit-row"
        data-seq={r.seq}
        data-action={r.action}
        data-outcome={r.outcome}
        data-actor={r.actor_name ?? ""}
        aria-expanded={open}
      >
        <td className="adm-nowrap adm-mono-num">{shanghaiDateTime(r.occurred_at)}</td>
        <td className="adm-num adm-mono-num">{r.seq}</td>
        <td>
          {r.actor_name ? (
            <span className="adm-actor">
              <strong data-testid="audit-actor-name">{r.actor_name}</strong>
              {r.actor_role ? <span className="muted">{t.roles[r.actor_role as keyof typeof t.roles] ?? r.actor_role}</span> : null}
            </span>
          ) : (
            <span className="muted">{r.source === "gateway" && !r.actor_id ? ta.anonymous : ta.system}</span>
          )}
        </td>
        <td>{facilityLabel(r.facility_id)}</td>
        <td>
          {label ? (
            <>
              <span data-testid="audit-action-label">{label}</span> <code className="adm-action-code">{r.action}</code>
            </>
          ) : (
            <>
              <code className="adm-action-code">{r.action}</code>
              {isRequest ? <span className="muted adm-small"> {ta.request}</span> : null}
            </>
          )}
        </td>
        <td className="adm-object">
          {r.object_type ? <span className="muted">{r.object_type}</span> : null}
          {r.object_id ? <code title={r.object_id}> {r.object_id.length > 24 ? `${r.object_id.slice(0, 8)}…` : r.object_id}</code> : null}
        </td>
        <td>
          <span className={`badge adm-outcome adm-outcome-${r.outcome}`} data-testid="audit-outcome-badge">
            {ta.outcomes[r.outcome] ?? r.outcome}
            {r.status_code ? ` · ${r.status_code}` : ""}
          </span>
        </td>
        <td className="adm-small">
          <span className="adm-client">
            <span>{ta.sources[r.source] ?? r.source}</span>
            {r.client_addr ? <span className="muted">{r.client_addr}</span> : null}
          </span>
        </td>
      </tr>
      {open ? (
        <tr className="adm-audit-detail" data-testid="audit-row-detail">
          <td colSpan={8}>
            <dl>
              <div>
                <dt>{ta.requestId}</dt>
                <dd>
                  <code>{r.request_id ?? "—"}</code>
                </dd>
              </div>
              <div>
                <dt>{ta.statusCode}</dt>
                <dd>{r.status_code ?? "—"}</dd>
              </div>
              <div>
                <dt>{ta.object}</dt>
                <dd>
                  <code>{[r.object_type, r.object_id].filter(Boolean).join(" ") || "—"}</code>
                </dd>
              </div>
              <div className="adm-wide">
                <dt>{ta.hash}</dt>
                <dd>
                  <code className="adm-hash">{r.hash}</code>
                </dd>
              </div>
              {Object.keys(r.detail ?? {}).length ? (
                <div className="adm-wide">
                  <dt>{ta.detail}</dt>
                  <dd>
                    <pre>{JSON.stringify(r.detail, null, 2)}</pre>
                  </dd>
                </div>
              ) : null}
            </dl>
          </td>
        </tr>
      ) : null}
    </>
  );
}
