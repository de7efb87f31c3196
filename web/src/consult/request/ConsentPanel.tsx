/**
 * The patient's informed consent: a photo/PDF of the signed form (uploaded with progress) or an e-consent
 * (the statement shown, signer and relation). Recording it needs the consult to exist: ``ensureConsult``
 * saves the draft first. Once recorded it shows who signed and can be withdrawn (before acceptance).
 */
import { useRef, useState } from "react";
import { useI18n } from "../../i18n";
import { RELATIONS, recordEConsent, uploadConsentForm, withdrawConsent, type Consent } from "../api";
import { consultError, formatBytes, ProgressBar, useDateTime } from "../format";

const MAX_BYTES = 20 * 1024 * 1024;
const TYPES = ["application/pdf", "image/jpeg", "image/png"];

interface Props {
  consent: Consent | null;
  onChange: (consent: Consent | null) => void;
  /** The consult's id, saving the draft first when it has none yet; null when the form is incomplete. */
  ensureConsult: () => Promise<string | null>;
  consultId: string | null;
}

export function ConsentPanel({ consent, onChange, ensureConsult, consultId }: Props) {
  const { t } = useI18n();
  const tf = t.consult.form;
  const when = useDateTime();
  const [method, setMethod] = useState<"signed_form" | "e_consent">("signed_form");
  const [signer, setSigner] = useState("");
  const [relation, setRelation] = useState<string>(RELATIONS[0]);
  const [file, setFile] = useState<File | null>(null);
  const [agree, setAgree] = useState(false);
  const [busy, setBusy] = useState(false);
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);

  if (consent) {
    return (
      <div className="cs-consent-done" data-testid="consult-consent-recorded">
        <span className="badge cs-ok">✓ {tf.consentRecorded}</span>
        <span>{tf.consentBy(consent.signer_name, consent.relation)}</span>
        <span className="muted small">
          {t.consult.detail.consentMethod[consent.method] ?? consent.method} · {when(consent.recorded_at)}
        </span>
        {consultId ? (
          <button
            type="button"
            className="btn btn-ghost btn-small"
            disabled={busy}
            onClick={() => {
              setBusy(true);
              withdrawConsent(consultId)
                .then(() => onChange(null))
                .catch((err: unknown) => setError(consultError(err, t)))
                .finally(() => setBusy(false));
            }}
            data-testid="consult-consent-withdraw"
          >
            {tf.withdraw}
          </button>
        ) : null}
        {error ? <p className="form-error">{error}</p> : null}
      </div>
    );
  }

  const missing = !signer.trim()
    ? tf.needs.signer
    : method === "signed_form" && !file
      ? tf.needs.file
      : method === "e_consent" && !agree
        ? tf.needs.agree
        : null;

  const record = async () => {
    setError(null);
    setBusy(true);
    try {
      const id = await ensureConsult();
      if (!id) return;
      if (method === "e_consent") {
        onChange(await recordEConsent(id, signer.trim(), relation));
      } else if (file) {
        setProgress(0);
        const handle = uploadConsentForm(id, file, signer.trim(), relation, (loaded, total) => setProgress(loaded / total));
        onChange(await handle.promise);
      }
    } catch (err) {
      setError(consultError(err, t));
    } finally {
      setBusy(false);
      setProgress(null);
    }
  };

  return (
    <div className="cs-consent" data-testid="consult-consent">
      <p className="muted small">{tf.consentHint}</p>
      <div className="segmented segmented-large" role="group">
        <button type="button" className={method === "signed_form" ? "active" : ""} onClick={() => setMethod("signed_form")} data-testid="consent-method-form">
          {tf.consentUpload}
        </button>
        <button type="button" className={method === "e_consent" ? "active" : ""} onClick={() => setMethod("e_consent")} data-testid="consent-method-e">
          {tf.consentE}
        </button>
      </div>

      {method === "signed_form" ? (
        <div className="cs-field">
          <span>{tf.consentFile}</span>
          <div className="cs-file-row">
            <input
              ref={input}
              type="file"
              accept=".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"
              data-testid="consent-file"
              onChange={(e) => {
                const f = e.target.files?.[0] ?? null;
                setError(null);
                if (f && f.size > MAX_BYTES) setError(tf.fileTooBig);
                else if (f && f.type && !TYPES.includes(f.type)) setError(tf.fileType);
                else {
                  setFile(f);
                  return;
                }
                setFile(null);
                if (input.current) input.current.value = "";
              }}
            />
            {file ? <span className="muted small">{formatBytes(file.size)}</span> : null}
          </div>
        </div>
      ) : (
        <div className="cs-statement" data-testid="consent-statement">
          <strong>{tf.statementTitle}</strong>
          <p>{tf.statement}</p>
        </div>
      )}

      <div className="cs-row">
        <label className="cs-field">
          <span>{tf.signer}</span>
          <input value={signer} onChange={(e) => setSigner(e.target.value)} maxLength={100} data-testid="consent-signer" />
        </label>
        <label className="cs-field">
          <span>{tf.relation}</span>
          <select value={relation} onChange={(e) => setRelation(e.target.value)} data-testid="consent-relation">
            {RELATIONS.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
      </div>
      {method === "e_consent" ? (
        <label className="cs-check">
          <input type="checkbox" checked={agree} onChange={(e) => setAgree(e.target.checked)} data-testid="consent-agree" />
          <span>{tf.statementAgree}</span>
        </label>
      ) : null}

      {progress !== null ? <ProgressBar value={progress} label={tf.uploaded(Math.round(progress * 100))} testId="consent-progress" /> : null}
      {error ? (
        <p className="form-error" role="alert" data-testid="consent-error">
          {error}
        </p>
      ) : null}
      <div className="cs-actions-row">
        <button type="button" className="btn btn-secondary" onClick={() => void record()} disabled={busy || missing !== null} data-testid="consent-record">
          {busy ? tf.recording : tf.recordConsent}
        </button>
        {missing ? <span className="muted small">{missing}</span> : null}
      </div>
    </div>
  );
}
