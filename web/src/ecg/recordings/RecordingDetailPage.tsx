/**
 * One recording for the township side: who and what, the analysis state, the tracing, the machine reading
 * (marked as awaiting a physician), and the signed report with its PDF when there is one.
 */
import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useI18n } from "../../i18n";
import { ErrorState, Loading, errorMessage } from "../../ui/states";
import { download, downloadPaths, type Recording } from "../api";
import { RecordingAlert } from "../alerts/RecordingAlert";
import { MachineReading } from "../MachineReading";
import { ReportView } from "../report/ReportView";
import { EcgViewer } from "../viewer/EcgViewer";
import { RecordingHeader, beatMarks, poorLeads } from "./RecordingHeader";
import { useRecording, useReport } from "./useRecording";

export function RecordingDetailPage({ backTo }: { backTo: string }) {
  const { id = "" } = useParams();
  const { recording, error, reload } = useRecording(id);
  const hasReport = recording?.status === "signed" || recording?.status === "in_review";
  const { report } = useReport(id, hasReport);

  if (error && !recording) {
    return (
      <div className="page ecg-page" data-testid="ecg-recording-page">
        <BackLink to={backTo} />
        <ErrorState error={error} onRetry={reload} />
      </div>
    );
  }
  if (!recording) return <Loading />;

  return (
    <div className="page ecg-page ecg-page-wide" data-testid="ecg-recording-page" data-status={recording.status}>
      <BackLink to={backTo} />
      <RecordingAlert recordingId={recording.id} />
      <section className="panel">
        <RecordingHeader recording={recording} />
      </section>
      <AnalysisState recording={recording} />
      <section className="panel panel-tight">
        <EcgViewer
          recordingId={recording.id}
          fs={recording.fs}
          durationS={recording.duration_s}
          leadNames={recording.lead_names}
          beats={beatMarks(recording)}
          poorLeads={poorLeads(recording)}
        />
      </section>
      {recording.status === "signed" && report ? (
        <ReportView report={report} recordingId={recording.id} />
      ) : (
        <ReportPending recording={recording} readerName={report?.reader_name} />
      )}
      <MachineReading recording={recording} />
      <OriginalFiles recording={recording} />
    </div>
  );
}

function BackLink({ to }: { to: string }) {
  const { t } = useI18n();
  return (
    <Link to={to} className="back-link" data-testid="ecg-back">
      ← {t.common.back}
    </Link>
  );
}

export function AnalysisState({ recording }: { recording: Recording }) {
  const { t } = useI18n();
  const td = t.ecg.detail;
  if (recording.status === "new" || recording.status === "analysing") {
    return (
      <div className="ecg-state-banner info" data-testid="ecg-analysing">
        <span className="spinner" aria-hidden="true" />
        {td.analysing}
      </div>
    );
  }
  if (recording.status === "failed") {
    return (
      <div className="ecg-state-banner bad" role="alert" data-testid="ecg-analysis-failed">
        <strong>{td.analysisFailed}</strong>
        {recording.analysis_error ? <span>{recording.analysis_error}</span> : null}
      </div>
    );
  }
  return null;
}

function ReportPending({ recording, readerName }: { recording: Recording; readerName?: string }) {
  const { t } = useI18n();
  const td = t.ecg.detail;
  const text =
    recording.status === "in_review"
      ? td.inReview(readerName ?? recording.reader_name ?? "")
      : recording.status === "ready"
        ? td.awaitingReader
        : recording.status === "failed"
          ? td.awaitingReaderFailed
          : td.awaitingAnalysis;
  return (
    <div className="ecg-state-banner neutral" data-testid="ecg-report-pending">
      {text}
    </div>
  );
}

function OriginalFiles({ recording }: { recording: Recording }) {
  const { t } = useI18n();
  const td = t.ecg.detail;
  const [error, setError] = useState<unknown>(null);
  if (!recording.original_files.length) return null;
  return (
    <section className="panel ecg-originals">
      <h3>{td.originals}</h3>
      <ul>
        {recording.original_files.map((f) => (
          <li key={f.name}>
            <button
              type="button"
              className="btn-link"
              onClick={() =>
                download(`${downloadPaths.original(recording.id)}?file=${encodeURIComponent(f.name)}`, f.name).catch((err: unknown) =>
                  setError(err),
                )
              }
            >
              {f.name}
            </button>{" "}
            <span className="muted">{Math.max(1, Math.round(f.size / 1024))} KB</span>
          </li>
        ))}
      </ul>
      {error ? <p className="state-error">{errorMessage(error, t)}</p> : null}
    </section>
  );
}
