/**
 * The state transitions this user may make now — the service's ``allowed_actions`` (docs/consult.md
 * "States"): the requester submits (a draft with consent), cancels (with a reason), closes after
 * acknowledging; the target side accepts, declines with a reason, reassigns; the consultant closes. Other
 * allowed actions (booking, sessions, the opinion) have their own panels. A refused transition shows why.
 */
import { useEffect, useState, type ReactNode } from "react";
import { Link } from "react-router-dom";
import { useI18n } from "../../i18n";
import { listSpecialists, transition, type Action, type Consult, type Opinion, type Specialist } from "../api";
import { Dialog } from "../Dialog";
import { consultError } from "../format";

type Ask = "decline" | "reassign" | "cancel" | "close" | null;

export function Actions({ consult, opinion, onDone }: { consult: Consult; opinion: Opinion | null; onDone: () => void }) {
  const { t } = useI18n();
  const td = t.consult.detail;
  const ta = t.consult.actions;
  const allowed = new Set(consult.allowed_actions);
  const [ask, setAsk] = useState<Ask>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const act = async (action: Action, body?: Record<string, unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await transition(consult.id, action, body);
      setAsk(null);
      onDone();
    } catch (err) {
      setError(consultError(err, t));
    } finally {
      setBusy(false);
    }
  };

  const buttons: { key: string; node: ReactNode }[] = [];
  const btn = (key: string, label: string, onClick: () => void, kind = "btn-secondary", title?: string, disabled = false) =>
    buttons.push({
      key,
      node: (
        <button type="button" className={`btn ${kind}`} onClick={onClick} disabled={busy || disabled} title={title} data-testid={`consult-action-${key}`}>
          {label}
        </button>
      ),
    });

  if (allowed.has("submit")) {
    buttons.push({
      key: "edit",
      node: (
        <Link to={`/consults/new?draft=${consult.id}`} className="btn btn-secondary" data-testid="consult-action-edit">
          {ta.edit}
        </Link>
      ),
    });
    btn("submit", ta.submit, () => void act("submit"), "btn-primary", consult.consent ? undefined : t.consult.form.needs.consent, !consult.consent);
  }
  if (allowed.has("accept")) btn("accept", ta.accept, () => void act("accept"), "btn-primary");
  if (allowed.has("decline")) btn("decline", ta.decline, () => setAsk("decline"));
  if (allowed.has("reassign")) btn("reassign", ta.reassign, () => setAsk("reassign"), "btn-ghost");
  if (allowed.has("close")) {
    const waiting = consult.my_roles.includes("requesting") && !consult.my_roles.includes("consultant") && !opinion?.acknowledged_at;
    btn("close", ta.close, () => setAsk("close"), "btn-secondary", waiting ? t.consult.opinion.acknowledgeHint : undefined, waiting);
  }
  if (allowed.has("cancel")) btn("cancel", ta.cancel, () => setAsk("cancel"), "btn-ghost");

  return (
    <div className="cs-actions" data-testid="consult-actions">
      {buttons.length ? buttons.map((b) => <span key={b.key}>{b.node}</span>) : <span className="muted small">{td.noActions}</span>}
      {!consult.consent && allowed.has("submit") ? <span className="muted small">{t.consult.form.needs.consent}</span> : null}
      {error && !ask ? (
        <p className="form-error" role="alert" data-testid="consult-action-error">
          {error}
        </p>
      ) : null}
      {ask === "decline" || ask === "cancel" ? (
        <ReasonDialog kind={ask} busy={busy} error={error} onCancel={() => setAsk(null)} onConfirm={(reason) => void act(ask, { reason })} />
      ) : null}
      {ask === "close" ? (
        <Dialog title={td.closeTitle} onClose={() => setAsk(null)} testId="consult-close-dialog">
          <p>{td.closePrompt}</p>
          {error ? <p className="form-error">{error}</p> : null}
          <div className="modal-actions">
            <button type="button" className="btn btn-secondary" onClick={() => setAsk(null)}>
              {td.cancel}
            </button>
            <button type="button" className="btn btn-primary" disabled={busy} onClick={() => void act("close")} data-testid="consult-close-confirm">
              {td.confirm}
            </button>
          </div>
        </Dialog>
      ) : null}
      {ask === "reassign" ? (
        <ReassignDialog consult={consult} busy={busy} error={error} onCancel={() => setAsk(null)} onConfirm={(id, reason) => void act("reassign", { consultant_id: id, reason })} />
      ) : null}
    </div>
  );
}

function ReasonDialog({
  kind,
  busy,
  error,
  onCancel,
  onConfirm,
}: {
  kind: "decline" | "cancel";
  busy: boolean;
  error: string | null;
  onCancel: () => void;
  onConfirm: (reason: string) => void;
}) {
  const { t } = useI18n();
  const td = t.consult.detail;
  const [reason, setReason] = useState("");
  return (
    <Dialog title={kind === "decline" ? td.declineTitle : td.cancelTitle} onClose={onCancel} testId={`consult-${kind}-dialog`}>
      <p>{kind === "decline" ? td.declinePrompt : td.cancelPrompt}</p>
      <label className="cs-field">
        <span>{kind === "decline" ? td.declineReason2 : td.cancelReason}</span>
        <textarea rows={3} value={reason} onChange={(e) => setReason(e.target.value)} maxLength={2000} data-testid={`consult-${kind}-reason`} />
      </label>
      {error ? <p className="form-error">{error}</p> : null}
      <div className="modal-actions">
        <button type="button" className="btn btn-secondary" onClick={onCancel}>
          {td.cancel}
        </button>
        <button type="button" className="btn btn-primary" disabled={busy || !reason.trim()} onClick={() => onConfirm(reason.trim())} data-testid={`consult-${kind}-confirm`}>
          {td.confirm}
        </button>
      </div>
    </Dialog>
  );
}

function ReassignDialog({
  consult,
  busy,
  error,
  onCancel,
  onConfirm,
}: {
  consult: Consult;
  busy: boolean;
  error: string | null;
  onCancel: () => void;
  onConfirm: (id: string, reason: string) => void;
}) {
  const { t } = useI18n();
  const td = t.consult.detail;
  const [list, setList] = useState<Specialist[] | null>(null);
  const [chosen, setChosen] = useState("");
  const [reason, setReason] = useState("");
  useEffect(() => {
    listSpecialists(consult.target_facility_id)
      .then((page) => setList(page.items.filter((s) => s.id !== consult.consultant_id)))
      .catch(() => setList([]));
  }, [consult.target_facility_id, consult.consultant_id]);
  return (
    <Dialog title={td.reassignTitle} onClose={onCancel} testId="consult-reassign-dialog">
      {list === null ? (
        <p className="muted">{t.common.loading}</p>
      ) : list.length === 0 ? (
        <p className="muted">{td.reassignNone}</p>
      ) : (
        <>
          <label className="cs-field">
            <span>{td.reassignTo}</span>
            <select value={chosen} onChange={(e) => setChosen(e.target.value)} data-testid="consult-reassign-to">
              <option value="">—</option>
              {list.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.display_name}
                </option>
              ))}
            </select>
          </label>
          <label className="cs-field">
            <span>{td.cancelReason}</span>
            <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={2000} />
          </label>
        </>
      )}
      {error ? <p className="form-error">{error}</p> : null}
      <div className="modal-actions">
        <button type="button" className="btn btn-secondary" onClick={onCancel}>
          {td.cancel}
        </button>
        <button type="button" className="btn btn-primary" disabled={busy || !chosen} onClick={() => onConfirm(chosen, reason.trim())} data-testid="consult-reassign-confirm">
          {td.confirm}
        </button>
      </div>
    </Dialog>
  );
}
