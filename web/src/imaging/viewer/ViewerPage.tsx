/**
 * /imaging/studies/:study — the study in the StudyViewer (series strip, stack viewer) reading the signed-in
 * archive's DICOMweb, its open critical-finding alert, share links, and the report under it.
 */
import { useEffect, useMemo, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useUser } from "../../auth/useSession";
import { useI18n } from "../../i18n";
import { ErrorState } from "../../ui/states";
import { TAG, getStudy, personName, str, type DicomJson } from "../api";
import { StudyAlert } from "../alerts/ImagingAlertBanner";
import { formatDicomDate } from "../format";
import { ReportPanel } from "../reading/ReportPanel";
import { SharePanel } from "../shared/SharePanel";
import { dicomWebSource } from "./source";
import { StudyViewer } from "./StudyViewer";

export function ViewerPage() {
  const { study = "" } = useParams();
  const { t } = useI18n();
  const tv = t.imaging.viewer;
  const user = useUser();
  const [studyJson, setStudyJson] = useState<DicomJson | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [reload, setReload] = useState(0);
  // a new object after "retry", so the viewer reads the study again
  const source = useMemo(() => ({ ...dicomWebSource(study), key: `dicomweb:${study}:${reload}` }), [study, reload]);

  useEffect(() => {
    const controller = new AbortController();
    setError(null);
    getStudy(study, controller.signal)
      .then(setStudyJson)
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(err);
      });
    return () => controller.abort();
  }, [study, reload]);

  const corners = (current: DicomJson | undefined) => {
    const sex = str(studyJson ?? undefined, TAG.PatientSex);
    return {
      topLeft: [
        personName(studyJson ?? undefined),
        [str(studyJson ?? undefined, TAG.PatientID), t.imaging.sex[sex] ?? sex].filter(Boolean).join(" · "),
      ].filter(Boolean),
      topRight: [
        formatDicomDate(str(studyJson ?? undefined, TAG.StudyDate)),
        str(studyJson ?? undefined, TAG.StudyDescription),
        [str(current, TAG.Modality), str(current, TAG.SeriesDescription)].filter(Boolean).join(" "),
      ].filter(Boolean),
    };
  };

  const back = user.roles.includes("technician") && !user.roles.includes("township_doctor") && !user.roles.includes("specialist")
    ? "/imaging/upload"
    : user.roles.includes("specialist")
      ? "/imaging/worklist"
      : "/imaging";

  if (error) {
    return (
      <div className="page imaging-page" data-testid="imaging-viewer-page">
        <ErrorState error={error} onRetry={() => setReload((n) => n + 1)} />
      </div>
    );
  }

  return (
    <div className="page imaging-page imaging-viewer-page" data-testid="imaging-viewer-page">
      <header className="imaging-viewer-head">
        <Link to={back} className="btn btn-ghost btn-small" data-testid="imaging-back">
          ← {tv.back}
        </Link>
        <strong data-testid="imaging-viewer-patient">{personName(studyJson ?? undefined)}</strong>
        <span className="muted">
          {str(studyJson ?? undefined, TAG.PatientID)} · {formatDicomDate(str(studyJson ?? undefined, TAG.StudyDate))} ·{" "}
          {str(studyJson ?? undefined, TAG.StudyDescription)}
        </span>
      </header>
      <StudyAlert study={study} />
      <StudyViewer source={source} corners={corners} onError={setError} />
      <ReportPanel study={study} />
      <SharePanel study={study} />
    </div>
  );
}
