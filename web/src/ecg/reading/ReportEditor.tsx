/**
 * The reader's draft: measurements (machine value beside the reader's, editable), statements (machine ones
 * prefilled, editable, removable, common phrases one click away), conclusion; save, and sign behind a
 * confirmation. A save that lost a race with another edit says so and offers to reload.
 */
import { useEffect, useMemo, useState } from "react";
import { formatTime, useI18n } from "../../i18n";
import { ApiError } from "../../api/errors";
import { errorMessage } from "../../ui/states";
import { saveDraft, signReport, type Measurements, type Recording, type Report, type Statement } from "../api";
import { statementText } from "../format";
import { AxisWheel } from "../MachineReading";
import { MEASURES, deviceMeasurements, levelOf, machineMeasurements, reportValue, type MeasureKey } from "../measurements";

interface Props {
  recording: Recording;
  report: Report;
  onChange: (report: Report) => void;
  onReload: () => void;
}

type Values = Record<MeasureKey, string>;

function initialValues(report: Report, machine: Partial<Record<MeasureKey, number>>): Values {
  const out = {} as Values;
  for (const def of MEASURES) {
    const v = reportValue(report.measurements, def.key);
    const m = machine[def.key];
    out[def.key] = v !== null ? String(v) : m !== undefined ? String(m) : "";
  }
  return out;
}

function editable(statements: Statement[]): Statement[] {
  return statements.filter((s) => s.code !== "machine_generated");
}

export function ReportEditor({ recording, report, onChange, onReload }: Props) {
  const { t, lang, locale } = useI18n();
  const te = t.ecg.editor;
  const machine = useMemo(() => machineMeasurements(recording.analysis), [recording.analysis]);
  const device = useMemo(() => deviceMeasurements(recording.device_measurements), [recording.device_measurements]);
  const hasDevice = Object.keys(device).length > 0;

  const [values, setValues] = useState<Values>(() => initialValues(report, machine));
  const [statements, setStatements] = useState<Statement[]>(() => editable(report.statements));
  const [conclusion, setConclusion] = useState(report.conclusion);
  const [newStatement, setNewStatement] = useState("");
  const [saving, setSaving] = useState(false);
  const [savedAt, setSavedAt] = useState<Date | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [confirming, setConfirming] = useState(false);
  const [dirty, setDirty] = useState(false);

  // a reloaded report (another version) replaces the form
  useEffect(() => {
    setValues(initialValues(report, machine));
    setStatements(editable(report.statements));
    setConclusion(report.conclusion);
    setDirty(false);
    // only when the server's version changes, not on every render
  }, [report.id, report.version]);

  const invalid = MEASURES.filter((def) => {
    const raw = values[def.key].trim();
    if (raw === "") return false;
    const n = Number(raw);
    return !Number.isFinite(n) || n < def.min || n > def.max;
  }).map((d) => d.key);

  const measurements = (): Measurements => {
    const out: Measurements = { ...report.measurements };
    for (const def of MEASURES) {
      const raw = values[def.key].trim();
      out[def.key] = raw === "" ? null : Number(raw);
    }
    return out;
  };

  const save = async (): Promise<Report | null> => {
    if (invalid.length) {
      setError(new ApiError(422, "invalid", te.invalidValues, null, {}));
      return null;
    }
    setSaving(true);
    setError(null);
    try {
      const updated = await saveDraft(recording.id, {
        version: report.version,
        measurements: measurements(),
        statements,
        conclusion: conclusion.trim(),
      });
      onChange(updated);
      setSavedAt(new Date());
      setDirty(false);
      return updated;
    } catch (err) {
      setError(err);
      return null;
    } finally {
      setSaving(false);
    }
  };

  const sign = async () => {
    setSaving(true);
    setError(null);
    try {
      const current = dirty || invalid.length ? await save() : report;
      if (!current) return;
      setSaving(true);
      const signed = await signReport(recording.id, current.version);
      setConfirming(false);
      onChange(signed);
    } catch (err) {
      setError(err);
    } finally {
      setSaving(false);
    }
  };

  const touch = () => setDirty(true);
  const setValue = (key: MeasureKey, v: string) => {
    setValues((old) => ({ ...old, [key]: v }));
    touch();
  };
  const editStatement = (i: number, text: string) => {
    setStatements((list) =>
      list.map((s, j) =>
        j === i ? { code: s.code ?? null, source: "reader", zh: lang === "zh" ? text : "", en: lang === "en" ? text : "" } : s,
      ),
    );
    touch();
  };
  const addStatement = (zh: string, en: string, code: string | null = null) => {
    if (!zh.trim() && !en.trim()) return;
    setStatements((list) => [...list, { code, zh: zh.trim(), en: en.trim(), source: "reader" }]);
    touch();
  };
  const num = (key: MeasureKey) => {
    const raw = values[key].trim();
    return raw === "" || !Number.isFinite(Number(raw)) ? undefined : Number(raw);
  };
  const conflict = error instanceof ApiError && error.status === 409;

  return (
    <section className="panel ecg-editor" data-testid="ecg-report-editor" data-version={report.version}>
      <header className="ecg-editor-header">
        <h2>{te.title}</h2>
        <span className="muted">{te.draftInfo(report.reader_name, report.version)}</span>
      </header>

      <div className="ecg-editor-grid">
        <div className="ecg-editor-measures">
          <h3>{te.measurements}</h3>
          <table className="data-table measure-table" data-testid="ecg-measure-table">
            <thead>
              <tr>
                <th>{te.item}</th>
                <th className="num">{te.machine}</th>
                {hasDevice ? <th className="num">{te.device}</th> : null}
                <th>{te.reader}</th>
                <th>{te.reference}</th>
              </tr>
            </thead>
            <tbody>
              {MEASURES.map((def) => {
                const v = num(def.key);
                const level = levelOf(def, v);
                const changed = v !== undefined && machine[def.key] !== undefined && v !== machine[def.key];
                return (
                  <tr key={def.key} className={`ecg-level-${level}`}>
                    <th scope="row">{t.ecg.machine.measure[def.key]}</th>
                    <td className="num">{machine[def.key] ?? "—"}</td>
                    {hasDevice ? <td className="num">{device[def.key] ?? "—"}</td> : null}
                    <td>
                      <span className="measure-input">
                        <input
                          type="number"
                          inputMode="numeric"
                          step="1"
                          value={values[def.key]}
                          onChange={(e) => setValue(def.key, e.target.value)}
                          aria-label={t.ecg.machine.measure[def.key]}
                          aria-invalid={invalid.includes(def.key)}
                          className={changed ? "changed" : undefined}
                          data-testid={`measure-input-${def.key}`}
                        />
                        <small>{def.unit}</small>
                      </span>
                    </td>
                    <td className="muted">{def.normal ? `${def.normal[0]}–${def.normal[1]}` : ""}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <p className="muted small">{te.changedHint}</p>
          <AxisWheel p={num("p_axis_deg")} qrs={num("qrs_axis_deg")} t={num("t_axis_deg")} />
        </div>

        <div className="ecg-editor-text">
          <h3>{te.statements}</h3>
          <ol className="statement-list" data-testid="ecg-statements">
            {statements.map((st, i) => (
              <li key={i} data-testid="ecg-statement" data-source={st.source ?? "reader"}>
                <input
                  value={statementText(st, lang)}
                  onChange={(e) => editStatement(i, e.target.value)}
                  aria-label={te.statement(i + 1)}
                  maxLength={500}
                />
                <span className={`badge ${st.source === "machine" ? "badge-machine" : "badge-reader"}`}>
                  {st.source === "machine" ? te.fromMachine : te.fromReader}
                </span>
                <button
                  type="button"
                  className="btn btn-ghost btn-small"
                  aria-label={te.remove}
                  title={te.remove}
                  onClick={() => {
                    setStatements((list) => list.filter((_, j) => j !== i));
                    touch();
                  }}
                >
                  ×
                </button>
              </li>
            ))}
          </ol>
          <form
            className="statement-add"
            onSubmit={(e) => {
              e.preventDefault();
              addStatement(lang === "zh" ? newStatement : "", lang === "en" ? newStatement : "");
              setNewStatement("");
            }}
          >
            <input
              value={newStatement}
              onChange={(e) => setNewStatement(e.target.value)}
              placeholder={te.addPlaceholder}
              maxLength={500}
              data-testid="ecg-statement-new"
            />
            <button type="submit" className="btn btn-secondary btn-small" disabled={!newStatement.trim()} data-testid="ecg-statement-add">
              {te.add}
            </button>
          </form>
          <div className="phrase-chips" aria-label={te.phrases}>
            {t.ecg.phrases.map((p) => (
              <button key={p.code} type="button" className="chip" onClick={() => addStatement(p.zh, p.en, p.code)}>
                {lang === "en" ? p.en : p.zh}
              </button>
            ))}
          </div>

          <label className="field">
            <h3>{te.conclusion}</h3>
            <textarea
              rows={4}
              maxLength={4000}
              value={conclusion}
              onChange={(e) => {
                setConclusion(e.target.value);
                touch();
              }}
              placeholder={te.conclusionPlaceholder}
              data-testid="ecg-conclusion"
            />
          </label>
        </div>
      </div>

      {error ? (
        <div className="form-error" role="alert" data-testid="ecg-editor-error">
          {conflict ? te.conflict : errorMessage(error, t)}
          {conflict ? (
            <button type="button" className="btn btn-secondary btn-small" onClick={onReload}>
              {te.reload}
            </button>
          ) : null}
        </div>
      ) : null}

      <footer className="ecg-editor-actions">
        <span className="muted" data-testid="ecg-save-state">
          {dirty ? te.unsaved : savedAt ? te.saved(formatTime(savedAt, locale)) : ""}
        </span>
        <button type="button" className="btn btn-secondary" onClick={() => void save()} disabled={saving} data-testid="ecg-save-draft">
          {saving && !confirming ? t.common.loading : te.save}
        </button>
        <button
          type="button"
          className="btn btn-primary"
          onClick={() => setConfirming(true)}
          disabled={saving || (!statements.length && !conclusion.trim())}
          data-testid="ecg-sign"
          title={!statements.length && !conclusion.trim() ? te.needContent : undefined}
        >
          {te.sign}
        </button>
      </footer>

      {confirming ? (
        <div className="modal-backdrop" role="presentation">
          <div className="modal" role="dialog" aria-modal="true" aria-labelledby="sign-title" data-testid="ecg-sign-dialog">
            <h2 id="sign-title">{te.confirmTitle}</h2>
            <p>{te.confirmText}</p>
            <div className="modal-summary">
              <ol>
                {statements.map((s, i) => (
                  <li key={i}>{statementText(s, lang)}</li>
                ))}
              </ol>
              {conclusion.trim() ? <p>{conclusion.trim()}</p> : null}
            </div>
            {error ? <p className="form-error">{errorMessage(error, t)}</p> : null}
            <div className="modal-actions">
              <button type="button" className="btn btn-secondary" onClick={() => setConfirming(false)} disabled={saving} data-testid="ecg-sign-cancel">
                {t.ecg.cancel}
              </button>
              <button type="button" className="btn btn-primary" onClick={() => void sign()} disabled={saving} data-testid="ecg-sign-confirm">
                {saving ? t.common.loading : te.confirmSign}
              </button>
            </div>
          </div>
        </div>
      ) : null}
    </section>
  );
}
