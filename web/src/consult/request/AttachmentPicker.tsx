/**
 * The doctor's imaging studies (QIDO-RS /dicom-web/studies through the gateway) and ECG recordings
 * (/api/ecg/recordings) as two checklists; the chosen ones become the consult's attachments.
 */
import { useEffect, useState } from "react";
import { useI18n } from "../../i18n";
import { EmptyState, Loading } from "../../ui/states";
import { listRecordings, type RecordingSummary } from "../../ecg/api";
import { TAG, personName, searchStudies, str, type DicomJson } from "../../imaging/api";
import type { Attachment } from "../api";
import { ConsultErrorState, useDateTime } from "../format";

export function studyLabel(ds: DicomJson): string {
  const date = str(ds, TAG.StudyDate);
  const d = date.length === 8 ? `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6)}` : date;
  return [d, str(ds, TAG.ModalitiesInStudy), str(ds, TAG.StudyDescription), personName(ds)].filter(Boolean).join(" · ");
}

export function recordingLabel(r: RecordingSummary, when: (iso: string) => string): string {
  return [when(r.start_time ?? r.received_at), r.source_format.toUpperCase(), `${r.lead_names.length}导联`, `${Math.round(r.duration_s)}s`].join(" · ");
}

export function AttachmentPicker({ value, onChange }: { value: Attachment[]; onChange: (next: Attachment[]) => void }) {
  const { t } = useI18n();
  const tf = t.consult.form;
  const when = useDateTime();
  const [studies, setStudies] = useState<DicomJson[] | null>(null);
  const [recordings, setRecordings] = useState<RecordingSummary[] | null>(null);
  const [studyError, setStudyError] = useState<unknown>(null);
  const [recError, setRecError] = useState<unknown>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    searchStudies({ limit: 50, offset: 0 }, controller.signal)
      .then((list) => {
        setStudies(list);
        setStudyError(null);
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setStudyError(err);
      });
    listRecordings({ limit: 50 })
      .then((page) => {
        setRecordings(page.items);
        setRecError(null);
      })
      .catch((err: unknown) => setRecError(err));
    return () => controller.abort();
  }, [reload]);

  const has = (kind: Attachment["kind"], ref: string) => value.some((a) => a.kind === kind && a.ref === ref);
  const toggle = (a: Attachment) =>
    onChange(has(a.kind, a.ref) ? value.filter((x) => !(x.kind === a.kind && x.ref === a.ref)) : [...value, a]);

  return (
    <div className="cs-attach" data-testid="consult-attachment-picker">
      <p className="muted small">
        {tf.attachHint} <strong data-testid="consult-attachment-count">{tf.selected(value.length)}</strong>
      </p>
      <div className="cs-attach-cols">
        <div>
          <h3>{tf.studies}</h3>
          {studyError ? (
            <ConsultErrorState error={studyError} onRetry={() => setReload((n) => n + 1)} />
          ) : !studies ? (
            <Loading />
          ) : studies.length === 0 ? (
            <EmptyState title={tf.noStudies} />
          ) : (
            <ul className="cs-checklist">
              {studies.map((ds) => {
                const uid = str(ds, TAG.StudyInstanceUID);
                const label = studyLabel(ds);
                return (
                  <li key={uid}>
                    <label>
                      <input
                        type="checkbox"
                        checked={has("imaging_study", uid)}
                        onChange={() => toggle({ kind: "imaging_study", ref: uid, label })}
                        data-testid="consult-attach-study"
                        data-ref={uid}
                      />
                      <span>{label || uid}</span>
                    </label>
                  </li>
                );
              })}
            </ul>
          )}
        </div>
        <div>
          <h3>{tf.recordings}</h3>
          {recError ? (
            <ConsultErrorState error={recError} onRetry={() => setReload((n) => n + 1)} />
          ) : !recordings ? (
            <Loading />
          ) : recordings.length === 0 ? (
            <EmptyState title={tf.noRecordings} />
          ) : (
            <ul className="cs-checklist">
              {recordings.map((r) => {
                const label = recordingLabel(r, (iso) => when(iso));
                return (
                  <li key={r.id}>
                    <label>
                      <input
                        type="checkbox"
                        checked={has("ecg_recording", r.id)}
                        onChange={() => toggle({ kind: "ecg_recording", ref: r.id, label })}
                        data-testid="consult-attach-ecg"
                        data-ref={r.id}
                      />
                      <span>
                        {label}
                        {r.critical ? <span className="badge ecg-critical-badge">{t.ecg.critical}</span> : null}
                      </span>
                    </label>
                  </li>
                );
              })}
            </ul>
          )}
        </div>
      </div>
    </div>
  );
}
