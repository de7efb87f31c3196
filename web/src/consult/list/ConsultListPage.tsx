/**
 * /consults — the consults of both sides: 我发起的 (the township doctor's outgoing requests) and 待处理 (the
 * specialist's incoming inbox), with status chips, urgency, the deadline counting down (red once overdue)
 * and filters. A user who is on both sides sees both tabs.
 */
import { useCallback, useEffect, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { useUser } from "../../auth/useSession";
import { useI18n } from "../../i18n";
import { EmptyState, Loading } from "../../ui/states";
import { URGENCIES, listConsults, type Box, type ConsultStatus, type ConsultSummary, type Urgency } from "../api";
import { ConsultErrorState, Deadline, patientLine, StatusChip, UrgencyBadge, useDateTime, useFacilityName, useNow } from "../format";

type StatusFilter = "open" | "all" | "finished" | ConsultStatus;
const OPEN: ConsultStatus[] = ["draft", "submitted", "accepted", "scheduled", "in_session", "opinion_written", "signed"];
const FINISHED: ConsultStatus[] = ["closed", "declined", "cancelled"];

function statusesOf(filter: StatusFilter): ConsultStatus[] | undefined {
  if (filter === "all") return undefined;
  if (filter === "open") return OPEN;
  if (filter === "finished") return FINISHED;
  return [filter];
}

export function ConsultListPage() {
  const { t } = useI18n();
  const tl = t.consult.list;
  const user = useUser();
  const requester = user.roles.includes("township_doctor");
  const specialist = user.roles.includes("specialist");
  const boxes: Box[] = [...(requester ? (["outgoing"] as Box[]) : []), ...(specialist ? (["incoming"] as Box[]) : [])];
  const [params, setParams] = useSearchParams();
  const box: Box = (params.get("box") as Box | null) && boxes.includes(params.get("box") as Box) ? (params.get("box") as Box) : (boxes[0] ?? "outgoing");
  const status = (params.get("status") as StatusFilter | null) ?? "open";
  const urgency = (params.get("urgency") as Urgency | null) ?? null;

  const setFilter = (key: string, value: string | null) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };

  return (
    <div className="page cs-page" data-testid="area-page-consults">
      <header className="page-header page-header-row">
        <div>
          <h1>{t.areas.consults.title}</h1>
          <p className="muted">{t.areas.consults.summary}</p>
        </div>
        {requester ? (
          <Link to="/consults/new" className="btn btn-primary" data-testid="consult-new">
            + {tl.newConsult}
          </Link>
        ) : null}
      </header>

      <section className="panel">
        {boxes.length > 1 ? (
          <div className="tabs" role="tablist">
            {boxes.map((b) => (
              <button
                key={b}
                type="button"
                role="tab"
                aria-selected={box === b}
                className={`tab${box === b ? " active" : ""}`}
                onClick={() => setFilter("box", b)}
                data-testid={`consult-box-${b}`}
              >
                {tl[b]}
              </button>
            ))}
          </div>
        ) : (
          <h2 className="cs-box-title" data-testid={`consult-box-${box}`}>
            {tl[box]}
          </h2>
        )}
        <div className="cs-filters">
          <label className="cs-filter">
            <span>{tl.filterStatus}</span>
            <select value={status} onChange={(e) => setFilter("status", e.target.value)} data-testid="consult-filter-status">
              <option value="open">{tl.open}</option>
              <option value="finished">{tl.finished}</option>
              <option value="all">{tl.allStatus}</option>
              {[...OPEN, ...FINISHED].map((s) => (
                <option key={s} value={s}>
                  {t.consult.status[s]}
                </option>
              ))}
            </select>
          </label>
          <div className="segmented" role="group" aria-label={tl.filterUrgency} data-testid="consult-filter-urgency">
            <button type="button" className={urgency ? "" : "active"} onClick={() => setFilter("urgency", null)}>
              {tl.allUrgency}
            </button>
            {[...URGENCIES].reverse().map((u) => (
              <button key={u} type="button" className={urgency === u ? "active" : ""} onClick={() => setFilter("urgency", u)}>
                {t.consult.urgency[u]}
              </button>
            ))}
          </div>
        </div>
        <ConsultTable box={box} statuses={statusesOf(status)} urgency={urgency} filtered={status !== "open" || urgency !== null} />
      </section>
    </div>
  );
}

function ConsultTable({
  box,
  statuses,
  urgency,
  filtered,
}: {
  box: Box;
  statuses: ConsultStatus[] | undefined;
  urgency: Urgency | null;
  filtered: boolean;
}) {
  const { t } = useI18n();
  const tl = t.consult.list;
  const when = useDateTime();
  const facility = useFacilityName();
  const navigate = useNavigate();
  const now = useNow(15_000);
  const [items, setItems] = useState<ConsultSummary[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const key = `${box}|${statuses?.join(",") ?? ""}|${urgency ?? ""}`;

  const load = useCallback(() => {
    listConsults({ box, status: statuses, urgency })
      .then((page) => {
        setItems(page.items);
        setError(null);
      })
      .catch((err: unknown) => setError(err));
    // the key says when the query changed
  }, [key]);

  useEffect(() => {
    setItems(null);
    load();
    const timer = setInterval(load, 30_000);
    return () => clearInterval(timer);
  }, [load]);

  if (error && !items) return <ConsultErrorState error={error} onRetry={load} />;
  if (!items) return <Loading />;
  if (items.length === 0) {
    if (filtered) return <EmptyState title={tl.emptyFiltered} />;
    return box === "outgoing" ? (
      <EmptyState title={tl.emptyOutgoing}>{tl.emptyOutgoingHint}</EmptyState>
    ) : (
      <EmptyState title={tl.emptyIncoming}>{tl.emptyIncomingHint}</EmptyState>
    );
  }

  const sorted = [...items].sort((a, b) => rank(a, now) - rank(b, now));
  return (
    <table className="data-table cs-table" data-testid="consult-list" data-box={box}>
      <thead>
        <tr>
          <th>{tl.patient}</th>
          <th>{tl.reason}</th>
          <th>{box === "outgoing" ? tl.target : tl.from}</th>
          <th>{tl.urgency}</th>
          <th>{tl.status}</th>
          <th>{tl.deadline}</th>
          <th>{tl.created}</th>
          <th aria-label={tl.openRow} />
        </tr>
      </thead>
      <tbody>
        {sorted.map((c) => (
          <tr
            key={c.id}
            className={`clickable${c.urgency === "emergency" ? " cs-row-emergency" : ""}`}
            onClick={() => navigate(`/consults/${c.id}`)}
            data-testid="consult-row"
            data-id={c.id}
            data-status={c.status}
          >
            <td>
              <strong>{c.patient_name}</strong> <span className="muted">{patientLine(c, t)}</span>
            </td>
            <td className="cs-reason-cell">{c.reason}</td>
            <td>
              {box === "outgoing" ? facility(c.target_facility_id) : facility(c.facility_id)}
              <div className="small muted">
                {box === "outgoing" ? (c.consultant_name ?? c.specialty ?? tl.anySpecialist) : (c.requester_name ?? "")}
              </div>
            </td>
            <td>
              <UrgencyBadge urgency={c.urgency} />
            </td>
            <td>
              <StatusChip status={c.status} />
              {c.booking ? <div className="small muted">{tl.booked(when(c.booking.starts_at))}</div> : null}
            </td>
            <td>
              <Deadline consult={c} now={now} />
            </td>
            <td className="nowrap">{when(c.submitted_at ?? c.created_at)}</td>
            <td className="nowrap">
              <Link to={`/consults/${c.id}`} className="btn btn-secondary btn-small" data-testid="consult-open" onClick={(e) => e.stopPropagation()}>
                {tl.openRow}
              </Link>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Overdue first, then by urgency, then by the nearest deadline, then newest. */
function rank(c: ConsultSummary, now: number): number {
  const due = c.status === "submitted" ? c.respond_by : c.opinion_by;
  const left = due ? new Date(due).getTime() - now : Number.POSITIVE_INFINITY;
  const urgency = { emergency: 0, urgent: 1, routine: 2 }[c.urgency] ?? 3;
  if (left < 0) return -1e15 + left;
  if (Number.isFinite(left)) return urgency * 1e13 + left;
  return 4e13 - new Date(c.created_at).getTime() / 1e3;
}
