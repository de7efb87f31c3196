/**
 * An attached item opened inside the consult pages (the consult page and beside the video call): an ECG in
 * the ECG viewer, a study in the imaging viewer (the imaging area's own page, rendered in place through a
 * Routes with its own location so that its :study parameter resolves). Access comes from the consult's
 * grant for the consultant and from the facility for the requester; a 404 says so plainly.
 */
import { useEffect, useState } from "react";
import { Route, Routes } from "react-router-dom";
import { useI18n } from "../../i18n";
import { Loading } from "../../ui/states";
import { getRecording, type Recording } from "../../ecg/api";
import { EcgViewer } from "../../ecg/viewer/EcgViewer";
import { ViewerPage } from "../../imaging/viewer/ViewerPage";
import type { Attachment } from "../api";
import { ConsultErrorState } from "../format";

export function AttachmentView({ attachment }: { attachment: Attachment }) {
  if (attachment.kind === "ecg_recording") return <EcgAttachment id={attachment.ref} />;
  if (attachment.kind === "imaging_study") {
    return (
      <div className="cs-study-embed" data-testid="consult-study-view">
        <Routes location={`/imaging/studies/${encodeURIComponent(attachment.ref)}`}>
          <Route path="/imaging/studies/:study" element={<ViewerPage />} />
        </Routes>
      </div>
    );
  }
  return <p className="muted">{attachment.label ?? attachment.ref}</p>;
}

function EcgAttachment({ id }: { id: string }) {
  const { t } = useI18n();
  const [rec, setRec] = useState<Recording | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [reload, setReload] = useState(0);
  useEffect(() => {
    setError(null);
    getRecording(id)
      .then(setRec)
      .catch((err: unknown) => setError(err));
  }, [id, reload]);
  if (error) return <ConsultErrorState error={error} onRetry={() => setReload((n) => n + 1)} />;
  if (!rec) return <Loading label={t.consult.detail.loadingAttachment} />;
  const conclusion = rec.analysis?.statements?.map((s) => s.zh).join("；");
  return (
    <div className="cs-ecg-embed" data-testid="consult-ecg-view">
      {conclusion ? <p className="small muted">{conclusion}</p> : null}
      <EcgViewer
        recordingId={rec.id}
        fs={rec.fs}
        durationS={rec.duration_s}
        leadNames={rec.lead_names}
        poorLeads={rec.analysis?.quality?.leads?.filter((l) => !l.usable).map((l) => l.lead)}
      />
    </div>
  );
}
