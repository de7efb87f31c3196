/**
 * /consults/new (township doctor; ?draft=<id> continues a saved draft) — the invitation the rules ask
 * for: patient, reason, question, clinical summary, urgency, target hospital + specialty or a named
 * specialist, the studies/ECGs to show, and the patient's informed consent. The draft is saved on the first
 * "save" (or when consent is recorded, which needs the consult to exist); submit stays disabled, with the
 * reason shown beside it, until everything including the consent is there.
 */
import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { useFacilityDirectory } from "../../api/directory";
import { useI18n } from "../../i18n";
import { facilityName } from "../../shell/facility";
import { Loading } from "../../ui/states";
import { PatientPicker } from "../../ecg/upload/PatientPicker";
import type { Patient } from "../../ecg/api";
import { ageOf } from "../../ecg/patients";
import {
  URGENCIES,
  addAttachment,
  createConsult,
  getConsult,
  listSpecialists,
  removeAttachment,
  transition,
  updateConsult,
  type Attachment,
  type Consent,
  type Consult,
  type ConsultDraft,
  type Specialist,
  type Urgency,
} from "../api";
import { AttachmentPicker } from "./AttachmentPicker";
import { ConsentPanel } from "./ConsentPanel";
import { consultError, ConsultErrorState } from "../format";

interface Fields {
  patient: Patient | null;
  patientName: string;
  patientSex: string;
  patientAge: string;
  patientIdNumber: string;
  reason: string;
  question: string;
  summary: string;
  urgency: Urgency;
  target: string;
  specialty: string;
  consultant: string;
}

const EMPTY: Fields = {
  patient: null,
  patientName: "",
  patientSex: "",
  patientAge: "",
  patientIdNumber: "",
  reason: "",
  question: "",
  summary: "",
  urgency: "routine",
  target: "",
  specialty: "",
  consultant: "",
};

function fieldsOf(c: Consult): Fields {
  return {
    patient: null,
    patientName: c.patient_name ?? "",
    patientSex: c.patient_sex ?? "",
    patientAge: c.patient_age != null ? String(c.patient_age) : "",
    patientIdNumber: "",
    reason: c.reason ?? "",
    question: c.question ?? "",
    summary: c.clinical_summary ?? "",
    urgency: c.urgency,
    target: c.target_facility_id ?? "",
    specialty: c.specialty ?? "",
    consultant: c.consultant_id ?? "",
  };
}

export function RequestPage() {
  const { t } = useI18n();
  const [params] = useSearchParams();
  const draftId = params.get("draft");
  const [loaded, setLoaded] = useState<Consult | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    if (!draftId) return;
    getConsult(draftId)
      .then(setLoaded)
      .catch((err: unknown) => setError(err));
  }, [draftId]);

  if (draftId && error) return <ConsultErrorState error={error} />;
  if (draftId && !loaded) return <Loading />;
  return <RequestForm initial={loaded} key={loaded?.id ?? "new"} t={t} />;
}

function RequestForm({ initial, t }: { initial: Consult | null; t: ReturnType<typeof useI18n>["t"] }) {
  const { lang } = useI18n();
  const tf = t.consult.form;
  const navigate = useNavigate();
  const directory = useFacilityDirectory();
  const [f, setF] = useState<Fields>(() => (initial ? fieldsOf(initial) : EMPTY));
  const [consultId, setConsultId] = useState<string | null>(initial?.id ?? null);
  const [attachments, setAttachments] = useState<Attachment[]>(initial?.attachments ?? []);
  const [saved, setSaved] = useState<Attachment[]>(initial?.attachments ?? []);
  const [consent, setConsent] = useState<Consent | null>(initial?.consent ?? null);
  const [specialists, setSpecialists] = useState<Specialist[] | null>(null);
  const [busy, setBusy] = useState<"save" | "submit" | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const hospitals = useMemo(() => [...directory.values()].filter((d) => d.kind === "hospital"), [directory]);
  const set = <K extends keyof Fields>(key: K, value: Fields[K]) => setF((old) => ({ ...old, [key]: value }));

  useEffect(() => {
    setSpecialists(null);
    if (!f.target) return;
    let live = true;
    listSpecialists(f.target, f.specialty || null)
      .then((page) => live && setSpecialists(page.items))
      .catch(() => live && setSpecialists([]));
    return () => {
      live = false;
    };
  }, [f.target, f.specialty]);

  const pickPatient = (p: Patient | null) => {
    setF((old) =>
      p
        ? {
            ...old,
            patient: p,
            patientName: p.name,
            patientSex: ["male", "female", "other"].includes(p.sex) ? p.sex : p.sex === "M" ? "male" : p.sex === "F" ? "female" : "unknown",
            patientAge: ageOf(p.birth_date) != null ? String(ageOf(p.birth_date)) : old.patientAge,
            patientIdNumber: p.id_number ?? "",
          }
        : { ...old, patient: null },
    );
  };

  const age = f.patientAge.trim() === "" ? null : Number(f.patientAge);
  const needs: string[] = [];
  if (!f.patientName.trim() || !f.patientSex || age === null || !Number.isInteger(age) || age < 0 || age > 130) needs.push(tf.needs.patient);
  if (!f.reason.trim()) needs.push(tf.needs.reason);
  if (!f.question.trim()) needs.push(tf.needs.question);
  if (!f.summary.trim()) needs.push(tf.needs.summary);
  if (!f.target) needs.push(tf.needs.target);
  if (!f.specialty && !f.consultant) needs.push(tf.needs.specialty);
  const canSave = Boolean(f.patientName.trim() && f.target);

  const body = (): ConsultDraft => ({
    patient_id: f.patient?.id ?? initial?.patient_id ?? null,
    patient_name: f.patientName.trim(),
    patient_sex: f.patientSex || "unknown",
    patient_age: age !== null && Number.isFinite(age) ? age : null,
    reason: f.reason.trim(),
    question: f.question.trim(),
    clinical_summary: f.summary.trim(),
    urgency: f.urgency,
    target_facility_id: f.target,
    specialty: f.specialty || null,
    consultant_id: f.consultant || null,
  });

  /** Create or update the draft and bring its attachments in line with the picker; its id. */
  const saveDraft = async (): Promise<string> => {
    let id = consultId;
    if (id) await updateConsult(id, body());
    else {
      const created = await createConsult(body());
      id = created.id;
      setConsultId(id);
    }
    const current = id;
    const kept: Attachment[] = [];
    for (const a of saved) {
      if (attachments.some((x) => x.kind === a.kind && x.ref === a.ref)) kept.push(a);
      else if (a.id) await removeAttachment(current, a.id);
    }
    for (const a of attachments) {
      if (!kept.some((x) => x.kind === a.kind && x.ref === a.ref)) kept.push(await addAttachment(current, a));
    }
    setSaved(kept);
    return current;
  };

  const ensureConsult = async (): Promise<string | null> => {
    if (!canSave) {
      setError(needs[0] ?? tf.needs.patient);
      return null;
    }
    return saveDraft();
  };

  const run = async (kind: "save" | "submit") => {
    setBusy(kind);
    setError(null);
    setMessage(null);
    try {
      const id = await saveDraft();
      if (kind === "save") setMessage(tf.savedDraft);
      else {
        await transition(id, "submit");
        navigate(`/consults/${id}`);
      }
    } catch (err) {
      setError(consultError(err, t));
    } finally {
      setBusy(null);
    }
  };

  const submitBlocker = needs[0] ?? (consent ? null : tf.needs.consent);

  return (
    <div className="page cs-page" data-testid="consult-request-page">
      <Link to="/consults" className="back-link">
        ← {tf.back}
      </Link>
      <header className="page-header">
        <h1>{tf.title}</h1>
        <p className="muted">{tf.subtitle}</p>
      </header>

      <section className="panel cs-form-section">
        <h2>{tf.patientSection}</h2>
        <div className="cs-field">
          <span>{tf.findPatient}</span>
          <PatientPicker value={f.patient} onChange={pickPatient} />
        </div>
        <div className="cs-row">
          <label className="cs-field cs-grow">
            <span>{tf.patientName}</span>
            <input value={f.patientName} onChange={(e) => set("patientName", e.target.value)} maxLength={100} data-testid="consult-patient-name" />
          </label>
          <label className="cs-field">
            <span>{tf.patientSex}</span>
            <select value={f.patientSex} onChange={(e) => set("patientSex", e.target.value)} data-testid="consult-patient-sex">
              <option value="">—</option>
              <option value="male">{t.consult.sex.male}</option>
              <option value="female">{t.consult.sex.female}</option>
              <option value="other">{t.consult.sex.other}</option>
              <option value="unknown">{t.consult.sex.unknown}</option>
            </select>
          </label>
          <label className="cs-field cs-narrow">
            <span>{tf.patientAge}</span>
            <input type="number" min={0} max={130} value={f.patientAge} onChange={(e) => set("patientAge", e.target.value)} data-testid="consult-patient-age" />
          </label>
        </div>
      </section>

      <section className="panel cs-form-section">
        <h2>{tf.requestSection}</h2>
        <label className="cs-field">
          <span>{tf.reason}</span>
          <input value={f.reason} onChange={(e) => set("reason", e.target.value)} placeholder={tf.reasonPlaceholder} maxLength={500} data-testid="consult-reason" />
        </label>
        <label className="cs-field">
          <span>{tf.question}</span>
          <textarea rows={2} value={f.question} onChange={(e) => set("question", e.target.value)} placeholder={tf.questionPlaceholder} maxLength={2000} data-testid="consult-question" />
        </label>
        <label className="cs-field">
          <span>{tf.summary}</span>
          <textarea rows={5} value={f.summary} onChange={(e) => set("summary", e.target.value)} placeholder={tf.summaryPlaceholder} maxLength={8000} data-testid="consult-summary" />
        </label>
        <div className="cs-field">
          <span>{tf.urgency}</span>
          <div className="segmented segmented-large" role="group" aria-label={tf.urgency}>
            {URGENCIES.map((u) => (
              <button key={u} type="button" className={`${f.urgency === u ? "active" : ""} cs-urg-${u}`} onClick={() => set("urgency", u)} data-testid={`consult-urgency-${u}`}>
                {t.consult.urgency[u]}
              </button>
            ))}
          </div>
          <small className="muted">{tf.urgencyHint[f.urgency]}</small>
        </div>
      </section>

      <section className="panel cs-form-section">
        <h2>{tf.targetSection}</h2>
        <div className="cs-row">
          <label className="cs-field cs-grow">
            <span>{tf.target}</span>
            <select
              value={f.target}
              onChange={(e) => setF((old) => ({ ...old, target: e.target.value, consultant: "" }))}
              data-testid="consult-target"
            >
              <option value="">{tf.chooseTarget}</option>
              {hospitals.map((h) => (
                <option key={h.id} value={h.id}>
                  {facilityName(h, lang)}
                </option>
              ))}
            </select>
          </label>
          <label className="cs-field">
            <span>{tf.specialty}</span>
            <select value={f.specialty} onChange={(e) => set("specialty", e.target.value)} data-testid="consult-specialty">
              <option value="">{tf.chooseSpecialty}</option>
              {tf.specialties.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
          <label className="cs-field cs-grow">
            <span>{tf.specialist}</span>
            <select value={f.consultant} onChange={(e) => set("consultant", e.target.value)} disabled={!f.target || !specialists?.length} data-testid="consult-specialist">
              <option value="">{tf.anySpecialist}</option>
              {specialists?.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.display_name}
                </option>
              ))}
            </select>
            {f.target && specialists && specialists.length === 0 ? <small className="muted">{tf.noSpecialists}</small> : null}
          </label>
        </div>
      </section>

      <section className="panel cs-form-section">
        <h2>{tf.attachSection}</h2>
        <AttachmentPicker value={attachments} onChange={setAttachments} />
      </section>

      <section className="panel cs-form-section">
        <h2>{tf.consentSection}</h2>
        <ConsentPanel consent={consent} onChange={setConsent} ensureConsult={ensureConsult} consultId={consultId} />
      </section>

      {error ? (
        <div className="form-error" role="alert" data-testid="consult-form-error">
          {error}
        </div>
      ) : null}
      <footer className="panel cs-submit-bar">
        <span className="muted" data-testid="consult-submit-reason">
          {message ?? submitBlocker ?? ""}
        </span>
        <button type="button" className="btn btn-secondary" disabled={busy !== null || !canSave} onClick={() => void run("save")} data-testid="consult-save-draft">
          {busy === "save" ? tf.saving : tf.saveDraft}
        </button>
        <button
          type="button"
          className="btn btn-primary"
          disabled={busy !== null || submitBlocker !== null}
          title={submitBlocker ?? undefined}
          onClick={() => void run("submit")}
          data-testid="consult-submit"
        >
          {busy === "submit" ? tf.submitting : tf.submit}
        </button>
      </footer>
    </div>
  );
}
