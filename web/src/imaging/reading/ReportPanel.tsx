/**
 * The study's report under the viewer. Specialist: claim, edit findings / impression / critical flag (the
 * draft is saved with its version; a 409 asks to reload), sign behind a confirmation, then read-only with
 * signer, time and content hash, addenda, PDF. Requester (township doctor, technician): the signed report
 * once there is one.
 */
import { useEffect, useState } from "react";
import { ApiError } from "../../api/errors";
import { useUser } from "../../auth/useSession";
import { formatTime, useI18n } from "../../i18n";
import { ErrorState, Loading, errorMessage } from "../../ui/states";
import { addAddendum, claimStudy, downloadPdf, getReport, saveReport, signReport, type Report } from "./api";

export function ReportPanel({ study }: { study: string }) {
  const { t, locale } = useI18n();
  const tr = t.imaging.report;
  const user = useUser();
  const isReader = user.roles.includes("specialist");
  const [report, setReport] = useState<Report | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [reload, setReload] = useState(0);
  const [findings, setFindings] = useState("");
  const [impression, setImpression] = useState("");
  const [critical, setCritical] = useState(false);
  const [criticalNote, setCriticalNote] = useState("");
  const [dirty, setDirty] = useState(false);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [conflict, setConflict] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [savedAt, setSavedAt] = useState<Date | null>(null);
  const [addendum, setAddendum] = useState("");

  const load = (r: Report | null) => {
    setReport(r);
    if (r) {
      setFindings(r.findings);
      setImpression(r.impression);
      setCritical(r.critical);
      setCriticalNote(r.critical_note);
    }
    setDirty(false);
    setConflict(false);
  };

  useEffect(() => {
    const controller = new AbortController();
    setError(null);
    getReport(study, controller.signal)
      .then(load)
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(err);
      });
    return () => controller.abort();
  }, [study, reload]);

  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setNotice(null);
    try {
      await action();
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && /version|changed/i.test(err.detail)) setConflict(true);
      else setNotice(err instanceof ApiError && err.status < 500 && err.detail ? err.detail : errorMessage(err, t));
    } finally {
      setBusy(false);
    }
  };

  const save = async (): Promise<Report> => {
    const saved = await saveReport(study, {
      version: report!.version,
      findings,
      impression,
      critical,
      critical_note: criticalNote,
    });
    load(saved);
    setSavedAt(new Date());
    return saved;
  };

  if (error) return <section className="panel imaging-report"><ErrorState error={error} onRetry={() => setReload((n) => n + 1)} /></section>;
  if (report === undefined) return <section className="panel imaging-report"><Loading /></section>;

  const mine = report && report.status === "draft" && report.reader_id === user.id;

  return (
    <section className="panel imaging-report" data-testid="imaging-report" data-status={report?.status ?? "none"}>
      <h2>{tr.title}</h2>
      {notice ? (
        <p className="state-error" role="alert" data-testid="imaging-report-notice">
          {notice}
        </p>
      ) : null}
      {conflict ? (
        <p className="state-error" role="alert">
          {tr.conflict}{" "}
          <button type="button" className="btn btn-secondary btn-small" onClick={() => setReload((n) => n + 1)}>
            {tr.reload}
          </button>
        </p>
      ) : null}

      {report === null ? (
        isReader ? (
          <div className="imaging-claim">
            <p>{tr.none}</p>
            <p className="muted small">{tr.claimHint}</p>
            <button type="button" className="btn btn-primary" disabled={busy} data-testid="imaging-claim" onClick={() => run(async () => load(await claimStudy(study)))}>
              {tr.claim}
            </button>
          </div>
        ) : (
          <p className="muted" data-testid="imaging-report-pending">
            {tr.pending}
          </p>
        )
      ) : report.status === "draft" && !mine ? (
        <>
          <p className="muted" data-testid="imaging-report-reader">{tr.readingBy(report.reader_name)}</p>
          <ReportText report={report} />
        </>
      ) : report.status === "draft" ? (
        <div className="imaging-editor" data-testid="imaging-report-editor">
          <label className="field">
            <span>{tr.findings}</span>
            <textarea rows={7} value={findings} maxLength={20000} data-testid="imaging-findings" onChange={(e) => { setFindings(e.target.value); setDirty(true); }} />
          </label>
          <label className="field">
            <span>{tr.impression}</span>
            <textarea rows={4} value={impression} maxLength={8000} data-testid="imaging-impression" onChange={(e) => { setImpression(e.target.value); setDirty(true); }} />
          </label>
          <label className="imaging-check imaging-critical-check">
            <input type="checkbox" checked={critical} data-testid="imaging-critical" onChange={(e) => { setCritical(e.target.checked); setDirty(true); }} />
            {tr.critical}
          </label>
          {critical ? (
            <label className="field">
              <span>{tr.criticalNote}</span>
              <input value={criticalNote} maxLength={2000} data-testid="imaging-critical-note" onChange={(e) => { setCriticalNote(e.target.value); setDirty(true); }} />
            </label>
          ) : null}
          <div className="imaging-editor-actions">
            <span className="muted small" data-testid="imaging-save-state">
              {dirty ? tr.unsaved : savedAt ? tr.saved(formatTime(savedAt, locale)) : ""}
            </span>
            <button type="button" className="btn btn-secondary" disabled={busy || !dirty} data-testid="imaging-save" onClick={() => run(async () => void (await save()))}>
              {tr.save}
            </button>
            <button
              type="button"
              className="btn btn-primary"
              disabled={busy}
              data-testid="imaging-sign"
              onClick={() => {
                if (!impression.trim()) setNotice(tr.needImpression);
                else setConfirming(true);
              }}
            >
              {tr.sign}
            </button>
          </div>
        </div>
      ) : (
        <>
          <ReportText report={report} />
          <p className="imaging-signed" data-testid="imaging-signed-info">
            {tr.signedBy(report.signer_name ?? report.reader_name, report.signed_at ? formatTime(new Date(report.signed_at), locale, true) : "")}
            {report.turnaround_minutes != null ? ` · ${tr.turnaround(Math.round(report.turnaround_minutes))}` : ""}
          </p>
          <p className="muted small imaging-hash">
            {tr.hash}：<code data-testid="imaging-report-hash">{report.content_hash}</code>
          </p>
          <button
            type="button"
            className="btn btn-secondary btn-small"
            data-testid="imaging-report-pdf"
            onClick={() =>
              run(async () => {
                try {
                  await downloadPdf(study);
                } catch (err) {
                  if (err instanceof ApiError && err.status === 409) setNotice(tr.pdfPending);
                  else throw err;
                }
              })
            }
          >
            {tr.pdf}
          </button>
          {report.addenda.length > 0 || isReader ? <h3>{tr.addenda}</h3> : null}
          {report.addenda.length > 0 ? (
            <ol className="imaging-addenda" data-testid="imaging-addenda">
              {report.addenda.map((a) => (
                <li key={a.id}>
                  <div className="imaging-pre">{a.text}</div>
                  <span className="muted small">
                    {a.author_name} · {formatTime(new Date(a.created_at), locale, true)}
                  </span>
                </li>
              ))}
            </ol>
          ) : null}
          {isReader ? (
            <div className="imaging-addendum-form">
              <textarea rows={2} value={addendum} maxLength={8000} placeholder={tr.addendumPlaceholder} data-testid="imaging-addendum-text" onChange={(e) => setAddendum(e.target.value)} />
              <button
                type="button"
                className="btn btn-secondary btn-small"
                disabled={busy || !addendum.trim()}
                data-testid="imaging-addendum-submit"
                onClick={() =>
                  run(async () => {
                    await addAddendum(study, addendum.trim());
                    setAddendum("");
                    load(await getReport(study));
                  })
                }
              >
                {tr.addendumSubmit}
              </button>
            </div>
          ) : null}
        </>
      )}

      {confirming && report ? (
        <div className="modal-backdrop imaging-modal-backdrop" role="presentation">
          <div className="modal imaging-modal" role="dialog" aria-modal="true" aria-labelledby="imaging-sign-title" data-testid="imaging-sign-dialog">
            <h2 id="imaging-sign-title">{tr.confirmTitle}</h2>
            <p>{tr.confirmText}</p>
            <div className="imaging-modal-summary">
              <strong>{tr.impression}</strong>
              <div className="imaging-pre">{impression}</div>
            </div>
            <div className="imaging-modal-actions">
              <button type="button" className="btn btn-ghost" onClick={() => setConfirming(false)}>
                {tr.cancel}
              </button>
              <button
                type="button"
                className="btn btn-primary"
                disabled={busy}
                data-testid="imaging-sign-confirm"
                onClick={() =>
                  run(async () => {
                    const current = dirty ? await save() : report;
                    load(await signReport(study, current.version));
                    setConfirming(false);
                  })
                }
              >
                {tr.confirmSign}
              </button>
            </div>
          </div>
        </div>
      ) : null}
    </section>
  );
}

function ReportText({ report }: { report: Report }) {
  const { t } = useI18n();
  const tr = t.imaging.report;
  return (
    <div className="imaging-report-text" data-testid="imaging-report-text">
      {report.critical ? (
        <p className="imaging-critical" data-testid="imaging-report-critical">
          {t.imaging.worklist.critical}
          {report.critical_note ? `：${report.critical_note}` : ""}
        </p>
      ) : null}
      <h3>{tr.findings}</h3>
      <div className="imaging-pre" data-testid="imaging-report-findings">{report.findings}</div>
      <h3>{tr.impression}</h3>
      <div className="imaging-pre" data-testid="imaging-report-impression">{report.impression}</div>
    </div>
  );
}
