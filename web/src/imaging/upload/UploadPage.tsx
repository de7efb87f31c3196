/**
 * Upload DICOM (technician, township doctor): a folder, files or a ZIP. Files go by STOW-RS in batches of
 * up to 10 instances (multipart/related built here, XHR for progress), one batch at a time: a township line
 * is slow. Each file shows its progress; a file the archive refuses is listed with the reason from the
 * FailedSOPSequence. A dropped connection pauses the queue and resumes by itself: before resending, the
 * archive is asked (QIDO by SOP Instance UID) which instances it already has, and those are not sent again.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import { Link } from "react-router-dom";
import { ApiError, NetworkError } from "../../api/errors";
import { useI18n } from "../../i18n";
import { Icon } from "../../ui/Icon";
import { errorMessage } from "../../ui/states";
import { existingInstances, stow, type StowResult } from "../api";
import { expandFiles, filesFromDrop, isDicomdir, readMeta, type PickedFile } from "./files";
import { READING_PRIORITIES, setStudyPriority, type ReadingPriority } from "../reading/api";

type State = "checking" | "queued" | "uploading" | "stored" | "already" | "failed" | "interrupted" | "ignored";

interface Item {
  id: number;
  path: string;
  data: Blob;
  size: number;
  sop: string;
  state: State;
  loaded: number;
  reason?: string;
  warning?: string;
  study?: string;
}

const BATCH_FILES = 10;
const BATCH_BYTES = 24 * 1024 * 1024;
const RESUME_DELAYS = [2, 4, 8, 15, 30];
let nextId = 1;

export function UploadPage({ area }: { area: "imaging" | "imagingUpload" }) {
  const { t } = useI18n();
  const tu = t.imaging.upload;
  const [items, setItems] = useState<Item[]>([]);
  const [reading, setReading] = useState(0);
  const [dragging, setDragging] = useState(false);
  const [offlineIn, setOfflineIn] = useState<number | null>(null);
  const [priority, setPriority] = useState<ReadingPriority>("routine");
  const [question, setQuestion] = useState("");
  // the priority and question apply to the studies of the files added after they were chosen
  const requestOf = useRef(new Map<number, { priority: ReadingPriority; question: string }>());
  const sentFor = useRef(new Map<string, string>());
  const [priorityNotes, setPriorityNotes] = useState<Record<string, string>>({});
  const fileInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);
  const busy = useRef(false);
  const abortRef = useRef<(() => void) | null>(null);
  const attempt = useRef(0);
  const resumeTimer = useRef<number | null>(null);
  const itemsRef = useRef(items);
  itemsRef.current = items;

  const patch = useCallback((ids: Set<number>, change: (it: Item) => Partial<Item>) => {
    setItems((list) => list.map((it) => (ids.has(it.id) ? { ...it, ...change(it) } : it)));
  }, []);

  // the folder picker needs the non-standard attribute
  useEffect(() => {
    folderInput.current?.setAttribute("webkitdirectory", "");
    folderInput.current?.setAttribute("directory", "");
  }, []);

  useEffect(() => () => abortRef.current?.(), []);

  // closing or reloading the tab with files still to send: the browser asks first
  const pending = items.some((it) => ["checking", "queued", "uploading", "interrupted"].includes(it.state));
  useEffect(() => {
    if (!pending) return;
    const warn = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = "";
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [pending]);

  const add = async (picked: Promise<PickedFile[]>) => {
    setReading((n) => n + 1);
    try {
      const files = await picked;
      const fresh: Item[] = [];
      for (const f of files) {
        const meta = await readMeta(f.data);
        const base = { id: nextId++, path: f.path, data: f.data, size: f.data.size, loaded: 0 };
        if (!meta || !meta.sopInstanceUid) fresh.push({ ...base, sop: "", state: "ignored", reason: tu.notDicom });
        else if (isDicomdir(meta)) fresh.push({ ...base, sop: meta.sopInstanceUid, state: "ignored", reason: tu.dicomdir });
        else fresh.push({ ...base, sop: meta.sopInstanceUid, state: "checking" });
      }
      for (const it of fresh) requestOf.current.set(it.id, { priority, question: question.trim() });
      setItems((list) => [...list, ...fresh]);
      await checkArchive(fresh.filter((it) => it.state === "checking"));
    } catch (err) {
      setItems((list) => [
        ...list,
        { id: nextId++, path: "", data: new Blob(), size: 0, sop: "", loaded: 0, state: "ignored", reason: errorMessage(err, t) },
      ]);
    } finally {
      setReading((n) => n - 1);
    }
  };

  /** Ask the archive which of these it already has (a folder sent again, or a resumed upload). */
  const checkArchive = async (list: Item[]) => {
    if (list.length === 0) return;
    const ids = new Set(list.map((it) => it.id));
    let have = new Set<string>();
    try {
      have = await existingInstances(list.map((it) => it.sop));
    } catch {
      // could not ask: send them all (the archive accepts the same bytes again as a success)
    }
    patch(ids, (it) => (have.has(it.sop) ? { state: "already", loaded: it.size } : { state: "queued", loaded: 0 }));
  };

  // the queue: one STOW batch at a time
  useEffect(() => {
    if (busy.current || offlineIn !== null) return;
    const batch: Item[] = [];
    let bytes = 0;
    // one STOW request carries one reading priority: a batch holds files added under the same choice
    let batchPriority: ReadingPriority | null = null;
    for (const it of items) {
      if (it.state !== "queued") continue;
      const p = requestOf.current.get(it.id)?.priority ?? "routine";
      batchPriority ??= p;
      if (p !== batchPriority) continue;
      if (batch.length >= BATCH_FILES || (batch.length > 0 && bytes + it.size > BATCH_BYTES)) break;
      batch.push(it);
      bytes += it.size;
    }
    if (batch.length === 0) return;
    busy.current = true;
    const ids = new Set(batch.map((it) => it.id));
    patch(ids, () => ({ state: "uploading", loaded: 0 }));
    // where each file's bytes sit in the multipart body, for per-file progress
    const header = 70;
    const offsets: number[] = [];
    let at = 0;
    for (const it of batch) {
      at += header;
      offsets.push(at);
      at += it.size + 2;
    }
    const handle = stow(
      batch.map((it) => ({ name: it.path, data: it.data })),
      (loaded) => {
        const byId = new Map(batch.map((it, i) => [it.id, Math.max(0, Math.min(it.size, loaded - offsets[i]!))]));
        setItems((list) => list.map((it) => (byId.has(it.id) ? { ...it, loaded: byId.get(it.id)! } : it)));
      },
      // routine is what a new study is anyway: not sent, so adding files later never lowers a study's priority
      batchPriority && batchPriority !== "routine" ? batchPriority : undefined,
    );
    abortRef.current = handle.abort;
    handle.promise
      .then((result) => {
        attempt.current = 0;
        applyResult(batch, result);
      })
      .catch((err: unknown) => {
        if (err instanceof DOMException && err.name === "AbortError") {
          patch(ids, () => ({ state: "queued", loaded: 0 }));
        } else if (err instanceof NetworkError || (err instanceof ApiError && [0, 502, 503, 504].includes(err.status))) {
          patch(ids, () => ({ state: "interrupted", loaded: 0 }));
          scheduleResume();
        } else {
          const reason = err instanceof ApiError ? tu.serverError(err.detail || String(err.status)) : errorMessage(err, t);
          patch(ids, () => ({ state: "failed", reason, loaded: 0 }));
        }
      })
      .finally(() => {
        abortRef.current = null;
        busy.current = false;
        setItems((list) => [...list]); // wake the queue
      });
  }, [items, offlineIn]); // eslint-disable-line react-hooks/exhaustive-deps

  /** The priority went with the STOW request (`?priority=`); a clinical question goes to the reading service
   * afterwards (once per study). */
  const sendPriorities = (batch: Item[], result: StowResult) => {
    for (const it of batch) {
      const study = result.studies.get(it.sop);
      const wanted = requestOf.current.get(it.id);
      if (!study || !wanted) continue;
      if (!wanted.question) {
        if (wanted.priority !== "routine") setPriorityNotes((m) => (m[study] === wanted.priority ? m : { ...m, [study]: wanted.priority }));
        continue;
      }
      const key = `${wanted.priority}|${wanted.question}`;
      if (sentFor.current.get(study) === key) continue;
      sentFor.current.set(study, key);
      setStudyPriority(study, wanted.priority, wanted.question || undefined)
        .then(() => setPriorityNotes((m) => ({ ...m, [study]: wanted.priority })))
        .catch(() => {
          sentFor.current.delete(study);
          setPriorityNotes((m) => ({ ...m, [study]: "failed" }));
        });
    }
  };

  const applyResult = (batch: Item[], result: StowResult) => {
    sendPriorities(batch, result);
    const failedByPart = new Map(result.failures.map((f) => [f.part, f]));
    const failedBySop = new Map(result.failures.filter((f) => f.sop).map((f) => [f.sop, f]));
    const warned = new Map(result.warnings.map((w) => [w.sop, w]));
    const studyOf = (sop: string) => result.studies.get(sop);
    setItems((list) =>
      list.map((it) => {
        const i = batch.findIndex((b) => b.id === it.id);
        if (i < 0) return it;
        const failure = failedByPart.get(i) ?? failedBySop.get(it.sop);
        if (failure) {
          const code = failure.reason;
          const words = code != null ? (tu.reasons[code] ?? tu.unknownReason(`0x${code.toString(16).toUpperCase()}`)) : "";
          const reason = [words, failure.comment].filter(Boolean).join(" — ");
          return { ...it, state: "failed", loaded: 0, reason };
        }
        return {
          ...it,
          state: "stored",
          loaded: it.size,
          study: studyOf(it.sop),
          warning: warned.has(it.sop) ? tu.replaced : undefined,
        };
      }),
    );
  };

  const scheduleResume = () => {
    const delay = RESUME_DELAYS[Math.min(attempt.current, RESUME_DELAYS.length - 1)]!;
    attempt.current += 1;
    setOfflineIn(delay);
  };

  // the count-down while the connection is down; the browser coming back online resumes at once
  useEffect(() => {
    if (offlineIn === null) return;
    if (offlineIn <= 0) {
      void resume();
      return;
    }
    resumeTimer.current = window.setTimeout(() => setOfflineIn((s) => (s === null ? null : s - 1)), 1000);
    return () => {
      if (resumeTimer.current) window.clearTimeout(resumeTimer.current);
    };
  }, [offlineIn]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    const online = () => setOfflineIn((s) => (s === null ? null : 0));
    window.addEventListener("online", online);
    return () => window.removeEventListener("online", online);
  }, []);

  const resuming = useRef(false);
  const resume = async () => {
    if (resuming.current) return;
    resuming.current = true;
    try {
      const waiting = itemsRef.current.filter((it) => it.state === "interrupted");
      const ids = new Set(waiting.map((it) => it.id));
      patch(ids, () => ({ state: "checking" }));
      let have: Set<string>;
      try {
        have = await existingInstances(waiting.map((it) => it.sop));
      } catch (err) {
        patch(ids, () => ({ state: "interrupted" }));
        if (err instanceof NetworkError || (err instanceof ApiError && err.status >= 502)) {
          scheduleResume();
          return;
        }
        have = new Set();
      }
      patch(ids, (it) => (have.has(it.sop) ? { state: "already", loaded: it.size } : { state: "queued", loaded: 0 }));
      setOfflineIn(null);
    } finally {
      resuming.current = false;
    }
  };

  const retryFailed = () => {
    const ids = new Set(items.filter((it) => it.state === "failed").map((it) => it.id));
    patch(ids, () => ({ state: "queued", loaded: 0, reason: undefined }));
  };

  const onDrop = (e: DragEvent<HTMLDivElement>) => {
    e.preventDefault();
    setDragging(false);
    void add(filesFromDrop(e.dataTransfer));
  };

  const counts = useMemo(() => {
    const c = { total: 0, stored: 0, already: 0, failed: 0, interrupted: 0, bytes: 0, done: 0 };
    for (const it of items) {
      if (it.state === "ignored") continue;
      c.total += 1;
      c.bytes += it.size;
      // a refused file is finished too: the bar reaches the end when nothing is left to send
      c.done += it.state === "stored" || it.state === "already" || it.state === "failed" ? it.size : it.loaded;
      if (it.state === "stored") c.stored += 1;
      if (it.state === "already") c.already += 1;
      if (it.state === "failed") c.failed += 1;
      if (it.state === "interrupted") c.interrupted += 1;
    }
    return c;
  }, [items]);
  const ignored = items.filter((it) => it.state === "ignored").length;

  const studies = useMemo(() => {
    const m = new Map<string, number>();
    for (const it of items) if (it.study) m.set(it.study, (m.get(it.study) ?? 0) + 1);
    return [...m.entries()];
  }, [items]);

  const overall = counts.bytes > 0 ? Math.round((counts.done / counts.bytes) * 100) : 0;

  return (
    <div className="page imaging-page" data-testid={area === "imagingUpload" ? "area-page-imagingUpload" : "imaging-upload-page"}>
      <header className="page-header page-header-row">
        <div>
          <h1>{tu.title}</h1>
          <p className="muted">{tu.summary}</p>
        </div>
        {area === "imaging" ? (
          <Link to="/imaging" className="btn btn-secondary">
            {t.imaging.viewer.back}
          </Link>
        ) : null}
      </header>

      <section className="panel">
        <div
          className={`imaging-dropzone${dragging ? " dragging" : ""}`}
          data-testid="imaging-dropzone"
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
        >
          <Icon name="upload" size={30} />
          <strong>{tu.drop}</strong>
          <span className="muted">{tu.formats}</span>
          <div className="imaging-pick">
            <button type="button" className="btn btn-primary" onClick={() => fileInput.current?.click()} data-testid="imaging-pick-files">
              {tu.pickFiles}
            </button>
            <button type="button" className="btn btn-secondary" onClick={() => folderInput.current?.click()} data-testid="imaging-pick-folder">
              {tu.pickFolder}
            </button>
          </div>
          <div className="imaging-upload-options" onClick={(e) => e.stopPropagation()}>
            <div className="segmented" role="radiogroup" aria-label={tu.priority}>
              {READING_PRIORITIES.slice().reverse().map((p) => (
                <button
                  key={p}
                  type="button"
                  role="radio"
                  aria-checked={priority === p}
                  className={priority === p ? `active prio-${p}` : `prio-${p}`}
                  data-testid={`imaging-priority-${p}`}
                  onClick={() => setPriority(p)}
                >
                  {t.imaging.priority[p]}
                </button>
              ))}
            </div>
            <input
              className="imaging-question"
              value={question}
              maxLength={2000}
              placeholder={tu.question}
              aria-label={tu.question}
              data-testid="imaging-question"
              onChange={(e) => setQuestion(e.target.value)}
            />
          </div>
          <span className="muted small">{tu.appliesToNext}</span>
          <input
            ref={fileInput}
            type="file"
            multiple
            hidden
            data-testid="imaging-file-input"
            onChange={(e) => {
              void add(expandFiles(Array.from(e.target.files ?? [])));
              e.target.value = "";
            }}
          />
          <input
            ref={folderInput}
            type="file"
            multiple
            hidden
            data-testid="imaging-folder-input"
            onChange={(e) => {
              void add(expandFiles(Array.from(e.target.files ?? [])));
              e.target.value = "";
            }}
          />
        </div>
      </section>

      <section className="panel" data-testid="imaging-upload-list">
        <div className="imaging-queue-head">
          <h2>{tu.queue}</h2>
          <div className="imaging-queue-actions">
            {counts.failed > 0 ? (
              <button type="button" className="btn btn-secondary btn-small" onClick={retryFailed} data-testid="imaging-retry-failed">
                {tu.retryFailed(counts.failed)}
              </button>
            ) : null}
            {items.length > 0 && !busy.current ? (
              <button type="button" className="btn btn-ghost btn-small" onClick={() => setItems([])}>
                {tu.clear}
              </button>
            ) : null}
          </div>
        </div>
        {reading > 0 ? (
          <p className="muted">
            <span className="spinner spinner-inline" aria-hidden="true" /> {tu.reading}
          </p>
        ) : null}
        {offlineIn !== null ? (
          <div className="imaging-offline" role="alert" data-testid="imaging-offline">
            <span>{offlineIn > 0 ? tu.offline(offlineIn) : tu.resuming}</span>
            <button type="button" className="btn btn-secondary btn-small" onClick={() => setOfflineIn(0)}>
              {tu.resumeNow}
            </button>
          </div>
        ) : null}
        {items.length === 0 ? (
          <p className="muted" data-testid="empty-state">
            {tu.empty}
          </p>
        ) : (
          <>
            <div className="imaging-overall">
              <div
                className="progress"
                role="progressbar"
                aria-valuemin={0}
                aria-valuemax={100}
                aria-valuenow={overall}
                data-testid="imaging-upload-overall"
              >
                <div className="progress-bar" style={{ width: `${overall}%` }} />
              </div>
              <span data-testid="imaging-upload-summary" data-stored={counts.stored} data-already={counts.already} data-failed={counts.failed}>
                {tu.summaryLine(counts.stored + counts.already, counts.total, counts.failed, counts.already)}
                {ignored ? ` · ${tu.state.ignored} ${ignored}` : ""}
              </span>
            </div>
            {studies.length > 0 ? (
              <div className="imaging-uploaded-studies" data-testid="imaging-uploaded-studies">
                <strong>{tu.studies}</strong>
                {studies.map(([study, n]) => (
                  <Link key={study} to={`/imaging/studies/${encodeURIComponent(study)}`} className="btn btn-secondary btn-small" data-testid="imaging-upload-open" data-study={study}>
                    {tu.openStudy} · {tu.instances(n)}
                    {priorityNotes[study] && priorityNotes[study] !== "failed" ? ` · ${t.imaging.priority[priorityNotes[study]!]}` : ""}
                    {priorityNotes[study] === "failed" ? ` · ${tu.priorityFailed}` : ""}
                  </Link>
                ))}
              </div>
            ) : null}
            <ul className="imaging-upload-items">
              {items.map((it) => {
                const pct = it.size > 0 ? Math.min(100, Math.round((it.loaded / it.size) * 100)) : 0;
                return (
                  <li key={it.id} className={`imaging-upload-item state-${it.state}`} data-testid="imaging-upload-item" data-state={it.state} data-sop={it.sop}>
                    <span className="imaging-upload-name" title={it.reason ? `${it.path}\n${it.reason}` : it.path}>
                      {it.path}
                    </span>
                    <span className="muted imaging-upload-size">{fileSize(it.size)}</span>
                    <span className="imaging-upload-progress">
                      {it.state === "uploading" || it.state === "queued" ? (
                        <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} data-testid="imaging-upload-progress">
                          <div className="progress-bar" style={{ width: `${pct}%` }} />
                        </div>
                      ) : null}
                    </span>
                    <span className={`imaging-upload-state ${["failed", "ignored", "interrupted"].includes(it.state) ? "bad" : ""}`}>
                      {it.state === "uploading" ? `${pct}%` : tu.state[it.state]}
                      {it.warning ? <span className="muted"> · {it.warning}</span> : null}
                    </span>
                    {it.reason ? (
                      <span className="imaging-upload-reason" data-testid="imaging-upload-reason" role={it.state === "failed" ? "alert" : undefined}>
                        {it.reason}
                      </span>
                    ) : null}
                  </li>
                );
              })}
            </ul>
          </>
        )}
      </section>
    </div>
  );
}

export function fileSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
