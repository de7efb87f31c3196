/**
 * Upload ECGs (township doctor, technician): pick or drop files, optionally a patient, a priority; each
 * recording uploads with its own progress bar, then shows the analysis state until the machine reading is
 * ready. A file the service refuses is listed with the service's reason.
 */
import { useEffect, useRef, useState, type DragEvent } from "react";
import { Link } from "react-router-dom";
import { useI18n } from "../../i18n";
import { errorMessage } from "../../ui/states";
import { Icon } from "../../ui/Icon";
import { ApiError } from "../../api/errors";
import { PRIORITIES, getRecording, uploadRecording, type Patient, type Priority, type Recording } from "../api";
import { CriticalBadge, fileSize, statementText } from "../format";
import { ACCEPT, groupFiles, type FileGroup } from "./grouping";
import { PatientPicker } from "./PatientPicker";
import { RecordingsTable } from "../recordings/RecordingsTable";

type ItemState = "queued" | "uploading" | "analysing" | "ready" | "failed" | "rejected" | "cancelled";

interface Item {
  id: number;
  group: FileGroup;
  state: ItemState;
  loaded: number;
  total: number;
  priority: Priority;
  patient: Patient | null;
  note: string;
  recording?: Recording;
  reason?: string;
}

const POLL_MS = 2000;
let nextId = 1;

export function UploadPage({ area }: { area: "ecg" | "ecgUpload" }) {
  const { t, lang } = useI18n();
  const tu = t.ecg.upload;
  const [items, setItems] = useState<Item[]>([]);
  const [priority, setPriority] = useState<Priority>("routine");
  const [patient, setPatient] = useState<Patient | null>(null);
  const [note, setNote] = useState("");
  const [dragging, setDragging] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);
  const aborts = useRef(new Map<number, () => void>());
  const busy = useRef(false);

  const update = (id: number, patch: Partial<Item>) =>
    setItems((list) => list.map((it) => (it.id === id ? { ...it, ...patch } : it)));

  const addFiles = (files: FileList | File[] | null) => {
    if (!files || files.length === 0) return;
    const groups = groupFiles(Array.from(files));
    setItems((list) => [
      ...list,
      ...groups.map((group) => ({
        id: nextId++,
        group,
        state: "queued" as const,
        loaded: 0,
        total: group.files.reduce((s, f) => s + f.size, 0),
        priority,
        patient,
        note,
      })),
    ]);
  };

  // one upload at a time (a township line is slow; parallel uploads only slow each other down)
  useEffect(() => {
    if (busy.current) return;
    const next = items.find((it) => it.state === "queued");
    if (!next) return;
    busy.current = true;
    update(next.id, { state: "uploading" });
    const handle = uploadRecording({
      files: next.group.files,
      priority: next.priority,
      patientId: next.patient?.id,
      clinicalNote: next.note.trim() || undefined,
      onProgress: (loaded, total) => update(next.id, { loaded, total }),
    });
    aborts.current.set(next.id, handle.abort);
    handle.promise
      .then((recording) => update(next.id, { state: "analysing", recording, loaded: next.total }))
      .catch((err: unknown) => {
        if (err instanceof DOMException && err.name === "AbortError") update(next.id, { state: "cancelled" });
        else
          update(next.id, {
            state: "rejected",
            reason: err instanceof ApiError && err.status < 500 ? err.detail || errorMessage(err, t) : errorMessage(err, t),
          });
      })
      .finally(() => {
        aborts.current.delete(next.id);
        busy.current = false;
        setItems((list) => [...list]); // wake the queue
      });
  }, [items, t]);

  // follow the analysis of what was uploaded until it is ready (or failed)
  const waiting = items.filter((it) => it.state === "analysing" && it.recording).map((it) => it.recording!.id).join(",");
  useEffect(() => {
    if (!waiting) return;
    const timer = setInterval(() => {
      for (const id of waiting.split(",")) {
        getRecording(id)
          .then((rec) => {
            if (rec.status === "new" || rec.status === "analysing") return;
            setItems((list) =>
              list.map((it) =>
                it.recording?.id === id
                  ? { ...it, recording: rec, state: rec.status === "failed" ? "failed" : "ready", reason: rec.analysis_error ?? undefined }
                  : it,
              ),
            );
          })
          .catch(() => undefined); // a hiccup: the next tick asks again
      }
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [waiting]);

  const onDrop = (e: DragEvent<HTMLDivElement>) => {
    e.preventDefault();
    setDragging(false);
    addFiles(e.dataTransfer.files);
  };

  const detailPath = (id: string) => `/ecg/recordings/${id}`;

  return (
    <div className="page ecg-page" data-testid={area === "ecgUpload" ? "area-page-ecgUpload" : "ecg-upload-page"}>
      <header className="page-header page-header-row">
        <div>
          <h1>{tu.title}</h1>
          <p className="muted">{tu.summary}</p>
        </div>
        {area === "ecg" ? (
          <Link to="/ecg" className="btn btn-secondary" data-testid="ecg-back-to-list">
            {tu.backToList}
          </Link>
        ) : null}
      </header>

      <section className="panel ecg-upload-form">
        <div
          className={`ecg-dropzone${dragging ? " dragging" : ""}`}
          data-testid="ecg-dropzone"
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
          onClick={() => inputRef.current?.click()}
          role="button"
          tabIndex={0}
          onKeyDown={(e) => {
            if (e.key === "Enter" || e.key === " ") inputRef.current?.click();
          }}
        >
          <Icon name="upload" size={30} />
          <strong>{tu.drop}</strong>
          <span className="muted">{tu.formats}</span>
          <span className="muted">{tu.wfdbHint}</span>
          <input
            ref={inputRef}
            type="file"
            multiple
            accept={ACCEPT}
            hidden
            data-testid="ecg-file-input"
            onChange={(e) => {
              addFiles(e.target.files);
              e.target.value = "";
            }}
          />
        </div>

        <div className="ecg-upload-options">
          <div className="field">
            <span>{tu.patient}</span>
            <PatientPicker value={patient} onChange={setPatient} />
            <small className="muted">{tu.patientHint}</small>
          </div>
          <fieldset className="field ecg-priority-field">
            <legend>{tu.priority}</legend>
            <div className="segmented segmented-large" role="radiogroup">
              {PRIORITIES.map((p) => (
                <button
                  key={p}
                  type="button"
                  role="radio"
                  aria-checked={priority === p}
                  className={`${priority === p ? "active" : ""} prio-${p}`}
                  data-testid={`ecg-priority-${p}`}
                  onClick={() => setPriority(p)}
                >
                  {t.ecg.priority[p]}
                </button>
              ))}
            </div>
            <small className="muted">{tu.priorityHint}</small>
          </fieldset>
          <label className="field">
            <span>{tu.note}</span>
            <textarea
              rows={2}
              maxLength={1000}
              value={note}
              onChange={(e) => setNote(e.target.value)}
              placeholder={tu.notePlaceholder}
              data-testid="ecg-note"
            />
          </label>
          <p className="muted ecg-upload-applies">{tu.appliesToNext}</p>
        </div>
      </section>

      <section className="panel" data-testid="ecg-upload-list">
        <h2>{tu.queue}</h2>
        {items.length === 0 ? (
          <p className="muted" data-testid="empty-state">
            {tu.empty}
          </p>
        ) : (
          <ul className="ecg-upload-items">
            {items.map((it) => {
              const pct = it.total > 0 ? Math.min(100, Math.round((it.loaded / it.total) * 100)) : 0;
              const rec = it.recording;
              const headline = rec?.analysis?.statements?.find((s) => s.code !== "machine_generated");
              return (
                <li key={it.id} className={`ecg-upload-item state-${it.state}`} data-testid="ecg-upload-item" data-state={it.state}>
                  <div className="ecg-upload-name">
                    <strong>{it.group.files.map((f) => f.name).join(" + ")}</strong>
                    <span className="muted">
                      {fileSize(it.total)} · {t.ecg.priority[it.priority]}
                      {it.patient ? ` · ${it.patient.name}` : ""}
                    </span>
                    {it.group.warning && it.state === "queued" ? (
                      <span className="ecg-warn">{tu.warnings[it.group.warning]}</span>
                    ) : null}
                  </div>
                  <div className="ecg-upload-progress">
                    {it.state === "uploading" || it.state === "queued" ? (
                      <>
                        <div
                          className="progress"
                          role="progressbar"
                          aria-valuemin={0}
                          aria-valuemax={100}
                          aria-valuenow={pct}
                          data-testid="ecg-upload-progress"
                        >
                          <div className="progress-bar" style={{ width: `${pct}%` }} />
                        </div>
                        <span className="muted">{it.state === "queued" ? tu.queued : tu.uploading(pct)}</span>
                      </>
                    ) : null}
                    {it.state === "analysing" ? (
                      <span className="ecg-upload-state">
                        <span className="spinner spinner-inline" aria-hidden="true" />
                        {tu.analysing}
                      </span>
                    ) : null}
                    {it.state === "ready" && rec ? (
                      <span className="ecg-upload-state ok" data-testid="ecg-upload-ready">
                        {rec.critical ? <CriticalBadge /> : null}
                        {tu.ready}
                        {headline ? <span className="muted"> · {statementText(headline, lang)}</span> : null}
                      </span>
                    ) : null}
                    {it.state === "failed" ? (
                      <span className="ecg-upload-state bad" data-testid="ecg-upload-failed">
                        {tu.analysisFailed}
                        {it.reason ? `：${it.reason}` : ""}
                      </span>
                    ) : null}
                    {it.state === "rejected" ? (
                      <span className="ecg-upload-state bad" data-testid="ecg-upload-rejected" role="alert">
                        {tu.rejected}：{it.reason}
                      </span>
                    ) : null}
                    {it.state === "cancelled" ? <span className="muted">{tu.cancelled}</span> : null}
                  </div>
                  <div className="ecg-upload-actions">
                    {it.state === "uploading" ? (
                      <button type="button" className="btn btn-ghost btn-small" onClick={() => aborts.current.get(it.id)?.()}>
                        {tu.cancel}
                      </button>
                    ) : null}
                    {it.state === "queued" ? (
                      <button
                        type="button"
                        className="btn btn-ghost btn-small"
                        onClick={() => setItems((list) => list.filter((x) => x.id !== it.id))}
                      >
                        {tu.remove}
                      </button>
                    ) : null}
                    {rec && (it.state === "ready" || it.state === "analysing" || it.state === "failed") ? (
                      <Link to={detailPath(rec.id)} className="btn btn-secondary btn-small" data-testid="ecg-upload-open">
                        {tu.open}
                      </Link>
                    ) : null}
                  </div>
                </li>
              );
            })}
          </ul>
        )}
      </section>

      {area === "ecgUpload" ? (
        <section className="panel">
          <h2>{tu.recent}</h2>
          <RecordingsTable refreshKey={items.filter((it) => it.state === "ready" || it.state === "failed").length} compact />
        </section>
      ) : null}
    </div>
  );
}
