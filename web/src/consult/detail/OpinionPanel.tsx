/**
 * The consult opinion: the consultant's editor (findings, diagnosis, recommendations, follow-up, referral;
 * save; sign behind a confirmation, as the ECG and imaging report editors do), and the read-only view everybody else
 * sees once signed (signer, time, hash, PDF, addenda, the requester's acknowledgement).
 */
import { useEffect, useState } from "react";
import { ApiError } from "../../api/errors";
import { useUser } from "../../auth/useSession";
import { formatTime, useI18n } from "../../i18n";
import {
  acknowledgeOpinion,
  addOpinionAddendum,
  download,
  opinionPdfPath,
  saveOpinion,
  signOpinion,
  type Consult,
  type Opinion,
  type OpinionBody,
} from "../api";
import { Dialog } from "../Dialog";
import { consultError, sideOf, useDateTime } from "../format";

const EDITABLE = ["accepted", "scheduled", "in_session", "opinion_written"];
const FIELDS = ["findings", "diagnosis", "recommendations", "follow_up"] as const;

interface Props {
  consult: Consult;
  opinion: Opinion | null;
  onChange: (o: Opinion) => void;
  onReload: () => void;
}

export function OpinionPanel({ consult, opinion, onChange, onReload }: Props) {
  const user = useUser();
  const side = sideOf(consult, user);
  if (side.consultant && EDITABLE.includes(consult.status) && (!opinion || opinion.status === "draft")) {
    return <OpinionEditor consult={consult} opinion={opinion} onChange={onChange} onReload={onReload} />;
  }
  return <OpinionView consult={consult} opinion={opinion} onChange={onChange} />;
}

function OpinionEditor({ consult, opinion, onChange, onReload }: Props) {
  const { t, locale } = useI18n();
  const to = t.consult.opinion;
  const empty: OpinionBody = { findings: "", diagnosis: "", recommendations: "", follow_up: "", referral_advised: false };
  const fromOpinion = (o: Opinion | null): OpinionBody =>
    o ? { findings: o.findings, diagnosis: o.diagnosis, recommendations: o.recommendations, follow_up: o.follow_up, referral_advised: o.referral_advised } : empty;
  const [body, setBody] = useState<OpinionBody>(() => fromOpinion(opinion));
  const [dirty, setDirty] = useState(false);
  const [savedAt, setSavedAt] = useState<Date | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [signing, setSigning] = useState(false);

  useEffect(() => {
    setBody(fromOpinion(opinion));
    setDirty(false);
  }, [opinion?.version]);

  const labels: Record<(typeof FIELDS)[number], string> = {
    findings: to.findings,
    diagnosis: to.diagnosis,
    recommendations: to.recommendations,
    follow_up: to.followUp,
  };

  const save = async (): Promise<Opinion | null> => {
    setBusy(true);
    setError(null);
    try {
      const saved = await saveOpinion(consult.id, { ...body, ...(opinion ? { version: opinion.version } : {}) });
      onChange(saved);
      setDirty(false);
      setSavedAt(new Date());
      return saved;
    } catch (err) {
      setError(err);
      return null;
    } finally {
      setBusy(false);
    }
  };

  const sign = async () => {
    setError(null);
    const current = dirty || !opinion ? await save() : opinion;
    if (!current) return;
    setBusy(true);
    try {
      onChange(await signOpinion(consult.id, current.version));
      setSigning(false);
      onReload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const empty2 = !body.diagnosis.trim() || !body.recommendations.trim();
  const conflict = error instanceof ApiError && error.status === 409 && !signing;
  return (
    <section className="panel cs-opinion-editor" data-testid="consult-opinion-editor" data-version={opinion?.version ?? 0}>
      <header className="cs-panel-header">
        <h2>{to.title}</h2>
        <span className="muted small">{to.draft}</span>
      </header>
      {FIELDS.map((k) => (
        <label key={k} className="cs-field">
          <span>{labels[k]}</span>
          <textarea
            rows={k === "findings" ? 4 : 3}
            maxLength={8000}
            value={body[k]}
            onChange={(e) => {
              setBody((b) => ({ ...b, [k]: e.target.value }));
              setDirty(true);
            }}
            data-testid={`opinion-${k}`}
          />
        </label>
      ))}
      <label className="cs-check">
        <input
          type="checkbox"
          checked={body.referral_advised}
          onChange={(e) => {
            setBody((b) => ({ ...b, referral_advised: e.target.checked }));
            setDirty(true);
          }}
          data-testid="opinion-referral"
        />
        <span>{to.referral}</span>
      </label>
      {error && !signing ? (
        <div className="form-error" role="alert" data-testid="opinion-error">
          {conflict ? to.conflict : consultError(error, t)}
          {conflict ? (
            <button type="button" className="btn btn-secondary btn-small" onClick={onReload}>
              {to.reload}
            </button>
          ) : null}
        </div>
      ) : null}
      <footer className="cs-actions-row cs-end">
        <span className="muted small" data-testid="opinion-save-state">
          {dirty ? to.unsaved : savedAt ? to.saved(formatTime(savedAt, locale)) : ""}
        </span>
        <button type="button" className="btn btn-secondary" disabled={busy} onClick={() => void save()} data-testid="opinion-save">
          {to.save}
        </button>
        <button
          type="button"
          className="btn btn-primary"
          disabled={busy || empty2}
          title={empty2 ? to.needContent : undefined}
          onClick={() => {
            setError(null);
            setSigning(true);
          }}
          data-testid="opinion-sign"
        >
          {to.sign}
        </button>
      </footer>
      {signing ? (
        <Dialog title={to.signTitle} onClose={() => setSigning(false)} testId="opinion-sign-dialog">
          <p>{to.signText}</p>
          <div className="modal-summary">
            <p>
              <strong>{to.diagnosis}：</strong>
              {body.diagnosis}
            </p>
            <p>
              <strong>{to.recommendations}：</strong>
              {body.recommendations}
            </p>
          </div>
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void sign();
            }}
            className="cs-sign-form"
          >
            {error ? (
              <p className="form-error" data-testid="opinion-sign-error">
                {consultError(error, t)}
              </p>
            ) : null}
            <div className="modal-actions">
              <button type="button" className="btn btn-secondary" onClick={() => setSigning(false)} disabled={busy}>
                {t.consult.detail.cancel}
              </button>
              <button type="submit" className="btn btn-primary" disabled={busy} data-testid="opinion-sign-confirm">
                {busy ? t.common.loading : to.confirmSign}
              </button>
            </div>
          </form>
        </Dialog>
      ) : null}
    </section>
  );
}

function OpinionView({ consult, opinion, onChange }: { consult: Consult; opinion: Opinion | null; onChange: (o: Opinion) => void }) {
  const { t } = useI18n();
  const to = t.consult.opinion;
  const when = useDateTime();
  const user = useUser();
  const side = sideOf(consult, user);
  const [addendum, setAddendum] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  if (!opinion || (opinion.status !== "signed" && !side.consultant)) {
    return (
      <section className="panel" data-testid="consult-opinion" data-status="none">
        <h2>{to.title}</h2>
        <p className="muted">{to.none}</p>
      </section>
    );
  }
  const signed = opinion.status === "signed";
  const run = async (fn: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(consultError(err, t));
    } finally {
      setBusy(false);
    }
  };
  const rows: [string, string, string][] = [
    ["findings", to.findings, opinion.findings],
    ["diagnosis", to.diagnosis, opinion.diagnosis],
    ["recommendations", to.recommendations, opinion.recommendations],
    ["follow_up", to.followUp, opinion.follow_up],
  ];
  return (
    <section className={`panel cs-opinion${signed ? " signed" : ""}`} data-testid="consult-opinion" data-status={opinion.status}>
      <header className="cs-panel-header">
        <h2>{to.title}</h2>
        {signed ? (
          <button
            type="button"
            className="btn btn-secondary btn-small"
            onClick={() => void run(() => download(opinionPdfPath(consult.id), `会诊意见-${consult.patient_name}.pdf`))}
            data-testid="opinion-pdf"
          >
            {to.pdf}
          </button>
        ) : null}
      </header>
      <dl className="cs-opinion-body">
        {rows
          .filter(([, , v]) => v)
          .map(([k, label, v]) => (
            <div key={k}>
              <dt>{label}</dt>
              <dd data-testid={`opinion-view-${k}`}>{v}</dd>
            </div>
          ))}
      </dl>
      {opinion.referral_advised ? <p className="badge cs-referral">{to.referralYes}</p> : null}
      {signed ? (
        <div className="cs-signature" data-testid="opinion-signed-info">
          <span>
            {to.signedBy}：<strong data-testid="opinion-signer">{opinion.signer_name ?? opinion.author_name ?? ""}</strong>
          </span>
          <span>
            {to.signedAt}：<strong>{when(opinion.signed_at)}</strong>
          </span>
          {opinion.content_hash ? (
            <span title={opinion.content_hash}>
              {to.hash}：<code>{opinion.content_hash.slice(0, 16)}…</code>
            </span>
          ) : null}
        </div>
      ) : (
        <p className="muted">{to.draft}</p>
      )}
      {opinion.addenda.length ? (
        <div className="cs-addenda" data-testid="opinion-addenda">
          <h3>{to.addenda}</h3>
          <ul>
            {opinion.addenda.map((a) => (
              <li key={a.id}>
                <p>{a.text}</p>
                <span className="muted small">
                  {a.author_name} · {when(a.created_at)}
                </span>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {signed && side.consultant ? (
        <form
          className="cs-addendum-form"
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              const a = await addOpinionAddendum(consult.id, addendum.trim());
              onChange({ ...opinion, addenda: [...opinion.addenda, a] });
              setAddendum("");
            });
          }}
        >
          <textarea rows={2} value={addendum} onChange={(e) => setAddendum(e.target.value)} placeholder={to.addendumPlaceholder} maxLength={4000} data-testid="opinion-addendum" />
          <button type="submit" className="btn btn-secondary btn-small" disabled={busy || !addendum.trim()} data-testid="opinion-addendum-add">
            {to.addAddendum}
          </button>
        </form>
      ) : null}
      {signed ? (
        opinion.acknowledged_at ? (
          <p className="cs-ack" data-testid="opinion-acknowledged">
            ✓ {to.acknowledged(opinion.acknowledged_name ?? consult.requester_name ?? "", when(opinion.acknowledged_at))}
          </p>
        ) : side.requester ? (
          <div className="cs-actions-row">
            <span className="muted small">{to.acknowledgeHint}</span>
            <button
              type="button"
              className="btn btn-primary"
              disabled={busy}
              onClick={() => void run(async () => onChange(await acknowledgeOpinion(consult.id)))}
              data-testid="opinion-acknowledge"
            >
              {t.consult.actions.acknowledge}
            </button>
          </div>
        ) : null
      ) : null}
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
    </section>
  );
}
