/** A signed (or draft, read-only) report: measurements, statements, conclusion, signature, addenda, downloads. */
import { useState } from "react";
import { useI18n } from "../../i18n";
import { errorMessage } from "../../ui/states";
import { download, downloadPaths, type Report } from "../api";
import { statementText, useDateTime } from "../format";
import { MEASURES, levelOf, reportValue } from "../measurements";

export function ReportView({ report, recordingId }: { report: Report; recordingId: string }) {
  const { t, lang } = useI18n();
  const tr = t.ecg.report;
  const when = useDateTime();
  const signed = report.status === "signed";
  const shown = MEASURES.filter((d) => reportValue(report.measurements, d.key) !== null);

  return (
    <section className={`panel ecg-report${signed ? " signed" : ""}`} data-testid="ecg-report" data-status={report.status}>
      <header className="ecg-report-header">
        <h2>{signed ? tr.signedTitle : tr.draftTitle}</h2>
        {signed ? <DownloadButtons report={report} recordingId={recordingId} /> : null}
      </header>

      {shown.length ? (
        <dl className="ecg-report-measures" data-testid="ecg-report-measurements">
          {shown.map((def) => {
            const v = reportValue(report.measurements, def.key);
            return (
              <div key={def.key} className={`ecg-level-${levelOf(def, v)}`}>
                <dt>{t.ecg.machine.measure[def.key]}</dt>
                <dd data-testid={`report-${def.key}`}>
                  {v} <small>{def.unit}</small>
                </dd>
              </div>
            );
          })}
        </dl>
      ) : null}

      {report.statements.length ? (
        <ol className="ecg-report-statements" data-testid="ecg-report-statements">
          {report.statements.map((st, i) => (
            <li key={`${st.code ?? "s"}-${i}`}>{statementText(st, lang)}</li>
          ))}
        </ol>
      ) : null}

      {report.conclusion ? (
        <div className="ecg-report-conclusion">
          <h3>{tr.conclusion}</h3>
          <p data-testid="ecg-report-conclusion">{report.conclusion}</p>
        </div>
      ) : null}

      {signed ? (
        <div className="ecg-signature" data-testid="ecg-signed-info">
          <span>
            {tr.signedBy}：<strong data-testid="ecg-signer">{report.signer_name ?? report.reader_name}</strong>
          </span>
          <span>
            {tr.signedAt}：<strong>{when(report.signed_at)}</strong>
          </span>
          {report.turnaround_minutes !== null ? (
            <span>
              {tr.turnaround}：{tr.minutes(Math.round(report.turnaround_minutes))}
              {report.on_time === false ? <span className="ecg-late"> · {tr.late}</span> : null}
            </span>
          ) : null}
          <span className="ecg-hash" title={report.content_hash ?? ""}>
            {tr.hash}：<code data-testid="ecg-report-hash">{report.content_hash?.slice(0, 16)}…</code>
          </span>
        </div>
      ) : (
        <p className="muted">{tr.draftBy(report.reader_name)}</p>
      )}

      {report.addenda.length ? (
        <div className="ecg-addenda" data-testid="ecg-addenda">
          <h3>{tr.addenda}</h3>
          <ul>
            {report.addenda.map((a) => (
              <li key={a.id} data-testid="ecg-addendum">
                <p>{a.text}</p>
                <span className="muted">
                  {a.author_name} · {when(a.created_at)}
                </span>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </section>
  );
}

export function DownloadButtons({ report, recordingId }: { report: Report; recordingId: string }) {
  const { t } = useI18n();
  const tr = t.ecg.report;
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const get = (kind: "pdf" | "dicom") => {
    setBusy(kind);
    setError(null);
    download(downloadPaths[kind](recordingId), `ecg-report-${recordingId.slice(0, 8)}.${kind === "pdf" ? "pdf" : "dcm"}`)
      .catch((err: unknown) => setError(err))
      .finally(() => setBusy(null));
  };
  return (
    <div className="ecg-downloads">
      <button
        type="button"
        className="btn btn-primary btn-small"
        onClick={() => get("pdf")}
        disabled={busy !== null}
        data-testid="ecg-report-pdf"
        data-ready={report.pdf_ready ? "true" : "false"}
        title={report.pdf_ready ? undefined : tr.rendering}
      >
        {busy === "pdf" ? t.common.loading : tr.pdf}
      </button>
      <button
        type="button"
        className="btn btn-secondary btn-small"
        onClick={() => get("dicom")}
        disabled={busy !== null}
        data-testid="ecg-report-dicom"
      >
        {busy === "dicom" ? t.common.loading : tr.dicom}
      </button>
      {!report.pdf_ready ? <span className="muted">{tr.rendering}</span> : null}
      {error ? <span className="state-error">{errorMessage(error, t)}</span> : null}
    </div>
  );
}
