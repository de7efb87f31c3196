/** Who and what a recording is: patient, facility, when, format, priority, status, device, the note. */
import { useI18n } from "../../i18n";
import { useFacilityLabel } from "../../shell/facility";
import type { BeatMark } from "../viewer/paper";
import type { Recording } from "../api";
import { CriticalBadge, PriorityBadge, StatusBadge, durationText, useDateTime } from "../format";
import { ageOf, usePatients } from "../patients";
import { maskId } from "../upload/PatientPicker";

export function RecordingHeader({ recording }: { recording: Recording }) {
  const { t, lang } = useI18n();
  const th = t.ecg.detail;
  const when = useDateTime();
  const patients = usePatients([recording.patient_id]);
  const p = recording.patient_id ? patients[recording.patient_id] : undefined;
  const age = ageOf(p?.birth_date) ?? (typeof recording.file_patient.age === "number" ? recording.file_patient.age : null);
  const sex = p?.sex ?? (typeof recording.file_patient.sex === "string" ? recording.file_patient.sex : null);
  const facilityLabel = useFacilityLabel();
  const facility = facilityLabel(recording.facility_id);
  const device = [recording.device.manufacturer, recording.device.model].filter((x) => typeof x === "string" && x).join(" ");

  return (
    <header className="ecg-record-header" data-testid="ecg-recording-header">
      <div className="ecg-record-title">
        <h1>
          {p ? p.name : th.noPatient}
          {sex ? <span className="muted"> {t.ecg.sex[sex] ?? sex}</span> : null}
          {age !== null ? <span className="muted"> {t.ecg.list.years(age)}</span> : null}
        </h1>
        <div className="cell-badges">
          <PriorityBadge priority={recording.priority} />
          <StatusBadge status={recording.status} />
          {recording.critical ? <CriticalBadge /> : null}
        </div>
      </div>
      <dl className="ecg-record-meta">
        {p?.id_number ? (
          <div>
            <dt>{th.idNumber}</dt>
            <dd>{maskId(p.id_number)}</dd>
          </div>
        ) : null}
        <div>
          <dt>{th.facility}</dt>
          <dd data-testid="ecg-recording-facility">{facility}</dd>
        </div>
        <div>
          <dt>{th.received}</dt>
          <dd>{when(recording.received_at)}</dd>
        </div>
        {recording.start_time ? (
          <div>
            <dt>{th.recorded}</dt>
            <dd>{when(recording.start_time)}</dd>
          </div>
        ) : null}
        <div>
          <dt>{th.recording}</dt>
          <dd>
            {recording.source_format.toUpperCase()} · {t.ecg.list.leads(recording.lead_names.length)} · {Math.round(recording.fs)} Hz ·{" "}
            {durationText(recording.duration_s, lang)}
          </dd>
        </div>
        {device ? (
          <div>
            <dt>{th.device}</dt>
            <dd>{device}</dd>
          </div>
        ) : null}
      </dl>
      {recording.clinical_note ? (
        <p className="ecg-note">
          <strong>{th.note}：</strong>
          {recording.clinical_note}
        </p>
      ) : null}
      {recording.warnings.length ? (
        <ul className="ecg-warnings" data-testid="ecg-recording-warnings">
          {recording.warnings.map((w, i) => (
            <li key={i}>{w}</li>
          ))}
        </ul>
      ) : null}
    </header>
  );
}

/** The analysis' beats as marks for the viewer's rhythm strip (times in seconds). */
export function beatMarks(recording: Recording): BeatMark[] | undefined {
  const beats = recording.analysis?.beats;
  const fs = recording.analysis?.fs;
  if (!beats?.samples || !beats.labels || !fs) return undefined;
  const labels = beats.labels;
  return beats.samples.map((s, i) => ({ t: s / fs, label: labels[i] ?? "N" }));
}

export function poorLeads(recording: Recording): string[] {
  return (recording.analysis?.quality?.leads ?? []).filter((l) => !l.usable).map((l) => l.lead);
}
