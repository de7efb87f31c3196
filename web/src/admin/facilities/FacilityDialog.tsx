/** Create a facility under a parent (or a root region), or edit one: names, code, level, reading centre. */
import { useState, type FormEvent } from "react";
import { useI18n } from "../../i18n";
import { useFacilityLabel } from "../../shell/facility";
import {
  childKinds,
  createFacility,
  updateFacility,
  type Facility,
  type FacilityKind,
  type FacilityNode,
  type FacilityUpdate,
} from "../api";
import { formErrors, NO_ERRORS, type FormErrors } from "../errors";
import { Field, nameOf } from "../format";
import { Modal } from "../Modal";

const LEVELS = ["tertiary", "secondary", "primary", "county", "township", "village"];
const FIELDS = ["kind", "code", "name_zh", "name_en", "level", "reading_centre_id", "parent_id"];

export type FacilityDialogMode = { mode: "create"; parent: FacilityNode | null } | { mode: "edit"; facility: FacilityNode };

/** The nearest hospital at or above ``node``: a new township's natural reading centre. */
function nearestHospital(node: FacilityNode | null, byId: Map<string, FacilityNode>): FacilityNode | null {
  for (let at = node; at; at = at.parent_id ? (byId.get(at.parent_id) ?? null) : null) {
    if (at.kind === "hospital" && at.active) return at;
  }
  return null;
}

function defaultLevel(kind: FacilityKind): string {
  return kind === "township" ? "township" : kind === "village" ? "village" : "";
}

export function FacilityDialog({
  target,
  byId,
  flat,
  onClose,
  onSaved,
}: {
  target: FacilityDialogMode;
  byId: Map<string, FacilityNode>;
  flat: { node: FacilityNode; depth: number }[];
  onClose: () => void;
  onSaved: (facility: Facility, created: boolean) => void;
}) {
  const { t, lang } = useI18n();
  const tf = t.admin.facilities;
  const outsideLabel = useFacilityLabel();
  const editing = target.mode === "edit" ? target.facility : null;
  const parent = target.mode === "create" ? target.parent : editing?.parent_id ? (byId.get(editing.parent_id) ?? null) : null;
  const kinds = target.mode === "create" ? childKinds(parent?.kind ?? null) : [];
  const firstKind: FacilityKind = editing?.kind ?? kinds[0] ?? "township";

  const [kind, setKind] = useState<FacilityKind>(firstKind);
  const [code, setCode] = useState(editing?.code ?? "");
  const [nameZh, setNameZh] = useState(editing?.name_zh ?? "");
  const [nameEn, setNameEn] = useState(editing?.name_en ?? "");
  const [level, setLevel] = useState(editing ? (editing.level ?? "") : defaultLevel(firstKind));
  const suggestCentre = (k: FacilityKind) =>
    k === "township" || k === "village" ? (nearestHospital(parent, byId)?.id ?? "") : "";
  const [centre, setCentre] = useState(editing ? (editing.reading_centre_id ?? "") : suggestCentre(firstKind));
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [busy, setBusy] = useState(false);

  const chooseKind = (k: FacilityKind) => {
    setKind(k);
    if (!editing) {
      setLevel(defaultLevel(k));
      setCentre(suggestCentre(k));
    }
  };

  const hospitals = (node: FacilityNode) => node.kind === "hospital" && node.active && node.id !== editing?.id;
  const levelOptions = level && !LEVELS.includes(level) ? [...LEVELS, level] : LEVELS;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setErrors(NO_ERRORS);
    try {
      let saved: Facility;
      if (!editing) {
        saved = await createFacility({
          parent_id: parent?.id ?? null,
          kind,
          code: code.trim(),
          name_zh: nameZh.trim(),
          name_en: nameEn.trim(),
          level: level || null,
          reading_centre_id: centre || null,
        });
      } else {
        const changes: FacilityUpdate = {};
        if (code.trim() !== editing.code) changes.code = code.trim();
        if (nameZh.trim() !== editing.name_zh) changes.name_zh = nameZh.trim();
        if (nameEn.trim() !== editing.name_en) changes.name_en = nameEn.trim();
        if ((level || null) !== editing.level) changes.level = level || null;
        if ((centre || null) !== editing.reading_centre_id) changes.reading_centre_id = centre || null;
        saved = Object.keys(changes).length ? await updateFacility(editing.id, changes) : editing;
      }
      onSaved(saved, !editing);
    } catch (err) {
      setErrors(formErrors(err, t, FIELDS, "code"));
      setBusy(false);
    }
  };

  const title = editing
    ? tf.editTitle(nameOf(editing, lang))
    : parent
      ? tf.createTitle(nameOf(parent, lang))
      : tf.createRootTitle;

  return (
    <Modal title={title} onClose={onClose} testId="facility-dialog" wide>
      <form className="adm-form" onSubmit={submit} noValidate data-testid="facility-form">
        {parent ? (
          <div className="adm-field" data-field="parent_id">
            <span className="adm-label">{tf.parent}</span>
            <span className="adm-static" data-testid="facility-form-parent">
              {nameOf(parent, lang)} <span className="muted">· {t.admin.kinds[parent.kind]}</span>
            </span>
            {errors.fields.parent_id ? (
              <span className="adm-field-error" role="alert" data-testid="field-error-parent_id">
                {errors.fields.parent_id}
              </span>
            ) : null}
          </div>
        ) : null}
        <div className="adm-form-grid">
          <Field label={tf.kind} name="kind" error={errors.fields.kind}>
            {editing ? (
              <span className="adm-static">{t.admin.kinds[editing.kind]}</span>
            ) : (
              <select
                className="adm-input"
                value={kind}
                onChange={(e) => chooseKind(e.target.value as FacilityKind)}
                data-testid="facility-kind-select"
                aria-invalid={!!errors.fields.kind || undefined}
              >
                {kinds.map((k) => (
                  <option key={k} value={k}>
                    {t.admin.kinds[k]}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label={tf.code} name="code" error={errors.fields.code} hint={tf.codeHint}>
            <input
              className="adm-input adm-mono"
              value={code}
              onChange={(e) => setCode(e.target.value.toUpperCase())}
              maxLength={40}
              required
              autoComplete="off"
              spellCheck={false}
              data-testid="facility-code"
              aria-invalid={!!errors.fields.code || undefined}
            />
          </Field>
          <Field label={tf.nameZh} name="name_zh" error={errors.fields.name_zh}>
            <input
              className="adm-input"
              value={nameZh}
              onChange={(e) => setNameZh(e.target.value)}
              maxLength={200}
              required
              data-testid="facility-name-zh"
              aria-invalid={!!errors.fields.name_zh || undefined}
            />
          </Field>
          <Field label={tf.nameEn} name="name_en" error={errors.fields.name_en}>
            <input
              className="adm-input"
              value={nameEn}
              onChange={(e) => setNameEn(e.target.value)}
              maxLength={200}
              data-testid="facility-name-en"
              aria-invalid={!!errors.fields.name_en || undefined}
            />
          </Field>
          <Field label={tf.level} name="level" error={errors.fields.level}>
            <select
              className="adm-input"
              value={level}
              onChange={(e) => setLevel(e.target.value)}
              data-testid="facility-level-select"
            >
              <option value="">{tf.levelNone}</option>
              {levelOptions.map((l) => (
                <option key={l} value={l}>
                  {t.admin.levels[l] ?? l}
                </option>
              ))}
            </select>
          </Field>
          {kind !== "region" ? (
            <Field
              label={tf.readingCentreField}
              name="reading_centre_id"
              error={errors.fields.reading_centre_id}
              hint={tf.readingCentreHint}
            >
              <select
                className="adm-input"
                value={centre}
                onChange={(e) => setCentre(e.target.value)}
                data-testid="facility-reading-centre-select"
                aria-invalid={!!errors.fields.reading_centre_id || undefined}
              >
                <option value="">{tf.readingCentreNone}</option>
                {centre && !byId.has(centre) ? <option value={centre}>{outsideLabel(centre)}</option> : null}
                {flat
                  .filter(({ node }) => hospitals(node) || node.id === centre)
                  .map(({ node }) => (
                    <option key={node.id} value={node.id}>
                      {nameOf(node, lang)}
                    </option>
                  ))}
              </select>
            </Field>
          ) : null}
        </div>
        {errors.general ? (
          <p className="form-error" role="alert" data-testid="facility-form-error">
            {errors.general}
          </p>
        ) : null}
        <div className="adm-actions">
          <button type="button" className="btn btn-ghost" onClick={onClose}>
            {t.admin.cancel}
          </button>
          <button type="submit" className="btn btn-primary" disabled={busy} data-testid="facility-submit">
            {busy ? t.admin.saving : editing ? t.admin.save : tf.create}
          </button>
        </div>
      </form>
    </Modal>
  );
}
