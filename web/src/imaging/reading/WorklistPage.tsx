/**
 * /imaging/worklist (specialist): the reading centre's worklist — STAT, urgent, routine, then the oldest
 * first — with the patient of each study from QIDO; a second tab searches every study the centre may see.
 */
import { useEffect, useState } from "react";
import { useNavigate, useSearchParams } from "react-router-dom";
import { formatTime, useI18n } from "../../i18n";
import { EmptyState, ErrorState, Loading } from "../../ui/states";
import { DW, TAG, personName, str, type DicomJson } from "../api";
import { apiFetch } from "../../api/session";
import { formatDicomDate } from "../format";
import { StudyListPage } from "../studies/StudyListPage";
import { OPEN_STATUSES, READING_PRIORITIES, getWorklist, type WorklistItem } from "./api";
import { WorklistTabs } from "./WorklistTabs";

const MODALITIES = ["CT", "MR", "DX", "CR", "US", "MG"];

export function WorklistPage() {
  const [params] = useSearchParams();
  return params.get("tab") === "search" ? <StudyListPage area="readingWorklist" /> : <Worklist />;
}

function Worklist() {
  const { t, locale } = useI18n();
  const tw = t.imaging.worklist;
  const navigate = useNavigate();
  const [signed, setSigned] = useState(false);
  const [priority, setPriority] = useState("");
  const [modality, setModality] = useState("");
  const [mine, setMine] = useState(false);
  const [items, setItems] = useState<WorklistItem[] | null>(null);
  const [patients, setPatients] = useState<Map<string, DicomJson>>(new Map());
  const [error, setError] = useState<unknown>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    setItems(null);
    setError(null);
    getWorklist({ status: signed ? ["signed"] : OPEN_STATUSES, priority, modality, mine, limit: 100 }, controller.signal)
      .then(async (page) => {
        setItems(page.items);
        if (page.items.length === 0) return;
        // the patients of these studies, in one QIDO request
        const q = new URLSearchParams({
          StudyInstanceUID: page.items.map((i) => i.study_instance_uid).join(","),
          limit: String(page.items.length),
        });
        q.append("includefield", "PatientSex");
        q.append("includefield", "InstitutionName");
        const res = await apiFetch(`${DW}/studies?${q.toString()}`, { headers: { Accept: "application/dicom+json" }, signal: controller.signal });
        if (!res.ok || res.status === 204) return;
        const list = (await res.json()) as DicomJson[];
        setPatients(new Map(list.map((ds) => [str(ds, TAG.StudyInstanceUID), ds])));
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(err);
      });
    return () => controller.abort();
  }, [signed, priority, modality, mine, reload]);

  return (
    <div className="page imaging-page" data-testid="area-page-readingWorklist">
      <header className="page-header page-header-row">
        <div>
          <h1>{t.imaging.list.worklistTitle}</h1>
          <p className="muted">{t.areas.readingWorklist.summary}</p>
        </div>
        <WorklistTabs active="worklist" />
      </header>
      <section className="panel imaging-search">
        <div className="segmented" role="radiogroup">
          <button type="button" role="radio" aria-checked={!signed} className={!signed ? "active" : ""} onClick={() => setSigned(false)} data-testid="worklist-open">
            {tw.open}
          </button>
          <button type="button" role="radio" aria-checked={signed} className={signed ? "active" : ""} onClick={() => setSigned(true)} data-testid="worklist-signed">
            {tw.signed}
          </button>
        </div>
        <label className="field">
          <span>{tw.priority}</span>
          <select value={priority} onChange={(e) => setPriority(e.target.value)} data-testid="worklist-priority">
            <option value="">{tw.anyPriority}</option>
            {READING_PRIORITIES.map((p) => (
              <option key={p} value={p}>
                {t.imaging.priority[p]}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>{t.imaging.list.modality}</span>
          <select value={modality} onChange={(e) => setModality(e.target.value)} data-testid="worklist-modality">
            <option value="">{t.imaging.list.anyModality}</option>
            {MODALITIES.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <label className="imaging-check">
          <input type="checkbox" checked={mine} onChange={(e) => setMine(e.target.checked)} data-testid="worklist-mine" />
          {tw.mine}
        </label>
      </section>
      <section className="panel">
        {error ? (
          <ErrorState error={error} onRetry={() => setReload((n) => n + 1)} />
        ) : items === null ? (
          <Loading />
        ) : items.length === 0 ? (
          <EmptyState title={tw.empty} />
        ) : (
          <table className="imaging-table" data-testid="imaging-worklist">
            <thead>
              <tr>
                <th>{tw.priority}</th>
                <th>{tw.patient}</th>
                <th>{tw.study}</th>
                <th>{t.imaging.list.date}</th>
                <th>{tw.received}</th>
                <th>{tw.status}</th>
                <th>{tw.reader}</th>
              </tr>
            </thead>
            <tbody>
              {items.map((it) => {
                const ds = patients.get(it.study_instance_uid);
                const sex = str(ds, TAG.PatientSex);
                return (
                  <tr
                    key={it.study_instance_uid}
                    className="clickable"
                    onClick={() => navigate(`/imaging/studies/${encodeURIComponent(it.study_instance_uid)}`)}
                    data-testid="worklist-row"
                    data-study={it.study_instance_uid}
                    data-status={it.status}
                    data-priority={it.priority}
                  >
                    <td>
                      <span className={`imaging-prio prio-${it.priority}`}>{t.imaging.priority[it.priority]}</span>
                      {it.critical ? <span className="imaging-critical">{tw.critical}</span> : null}
                    </td>
                    <td>
                      <strong>{personName(ds) || "—"}</strong>
                      <div className="muted small">
                        {[str(ds, TAG.PatientID), t.imaging.sex[sex] ?? sex, str(ds, TAG.InstitutionName)].filter(Boolean).join(" · ")}
                      </div>
                    </td>
                    <td>
                      {it.modalities.join(", ")} · {it.study_description}
                      <div className="muted small">
                        {it.num_series} / {it.num_instances}
                        {it.clinical_question ? ` · ${tw.question}：${it.clinical_question}` : ""}
                      </div>
                    </td>
                    <td>{formatDicomDate((it.study_date ?? "").replace(/-/g, ""))}</td>
                    <td>{formatTime(new Date(it.received_at), locale, true)}</td>
                    <td>
                      <span className={`imaging-status status-${it.status}`}>{t.imaging.status[it.status]}</span>
                    </td>
                    <td>{it.assignee_name ?? "—"}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
