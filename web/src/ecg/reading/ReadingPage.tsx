/**
 * Reading one ECG (specialist): the tracing, the machine reading, and the report — claim, edit the draft,
 * sign; once signed it is read-only (signer, time, hash) with addenda and the PDF / DICOM downloads.
 */
import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useUser } from "../../auth/useSession";
import { useI18n } from "../../i18n";
import { ErrorState, Loading, errorMessage } from "../../ui/states";
import { addAddendum, claim, type Report } from "../api";
import { RecordingAlert } from "../alerts/RecordingAlert";
import { MachineReading } from "../MachineReading";
import { AnalysisState } from "../recordings/RecordingDetailPage";
import { RecordingHeader, beatMarks, poorLeads } from "../recordings/RecordingHeader";
import { useRecording, useReport } from "../recordings/useRecording";
import { ReportView } from "../report/ReportView";
import { EcgViewer } from "../viewer/EcgViewer";
import { ReportEditor } from "./ReportEditor";

export function ReadingPage() {
  const { id = "" } = useParams();
  const { t } = useI18n();
  const tr = t.ecg.reading;
  const user = useUser();
  const { recording, error, reload } = useRecording(id);
  const { report, error: reportError, reload: reloadReport, setReport } = useReport(id, true);
  const [claiming, setClaiming] = useState(false);
  const [claimError, setClaimError] = useState<unknown>(null);

  if (error && !recording) {
    return (
      <div className="page ecg-page" data-testid="ecg-reading-page">
        <Link to="/ecg/reading" className="back-link">
          ← {tr.backToWorklist}
        </Link>
        <ErrorState error={error} onRetry={reload} />
      </div>
    );
  }
  if (!recording) return <Loading />;

  const mine = report?.reader_id === user.id;
  const signed = report?.status === "signed";

  const doClaim = () => {
    setClaiming(true);
    setClaimError(null);
    claim(recording.id)
      .then((r) => {
        setReport(r);
        reload();
      })
      .catch((err: unknown) => setClaimError(err))
      .finally(() => setClaiming(false));
  };

  const onReportChange = (r: Report) => {
    setReport(r);
    if (r.status === "signed") reload();
  };

  return (
    <div className="page ecg-page ecg-page-wide" data-testid="ecg-reading-page" data-status={recording.status}>
      <Link to="/ecg/reading" className="back-link" data-testid="ecg-back">
        ← {tr.backToWorklist}
      </Link>
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

      {report === undefined ? (
        reportError ? (
          <ErrorState error={reportError} onRetry={reloadReport} />
        ) : (
          <Loading />
        )
      ) : report === null ? (
        <section className="panel ecg-claim" data-testid="ecg-claim-panel">
          <div>
            <h2>{tr.notClaimed}</h2>
            <p className="muted">{tr.claimHint}</p>
          </div>
          <button type="button" className="btn btn-primary" onClick={doClaim} disabled={claiming} data-testid="ecg-claim">
            {claiming ? t.common.loading : tr.claim}
          </button>
          {claimError ? <p className="form-error">{errorMessage(claimError, t)}</p> : null}
        </section>
      ) : signed ? (
        <>
          <ReportView report={report} recordingId={recording.id} />
          <AddendumForm recordingId={recording.id} onAdded={reloadReport} />
        </>
      ) : mine ? (
        <ReportEditor recording={recording} report={report} onChange={onReportChange} onReload={reloadReport} />
      ) : (
        <>
          <div className="ecg-state-banner neutral" data-testid="ecg-claimed-by-other">
            {tr.claimedBy(report.reader_name)}
          </div>
          <ReportView report={report} recordingId={recording.id} />
        </>
      )}

      <MachineReading recording={recording} />
    </div>
  );
}

function AddendumForm({ recordingId, onAdded }: { recordingId: string; onAdded: () => void }) {
  const { t } = useI18n();
  const tr = t.ecg.reading;
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <section className="panel ecg-addendum-form">
      <h3>{tr.addendumTitle}</h3>
      <p className="muted">{tr.addendumHint}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!text.trim()) return;
          setBusy(true);
          setError(null);
          addAddendum(recordingId, text.trim())
            .then(() => {
              setText("");
              onAdded();
            })
            .catch((err: unknown) => setError(err))
            .finally(() => setBusy(false));
        }}
      >
        <textarea
          rows={3}
          maxLength={4000}
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder={tr.addendumPlaceholder}
          data-testid="ecg-addendum-text"
        />
        <div className="form-actions">
          {error ? <span className="state-error">{errorMessage(error, t)}</span> : null}
          <button type="submit" className="btn btn-primary" disabled={busy || !text.trim()} data-testid="ecg-addendum-submit">
            {busy ? t.common.loading : tr.addendumSubmit}
          </button>
        </div>
      </form>
    </section>
  );
}
