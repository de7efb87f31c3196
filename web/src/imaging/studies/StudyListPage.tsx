/**
 * The studies the user may see (QIDO-RS /dicom-web/studies): search by patient ID, name, a date range and
 * modality, newest first, 20 a page; each row has the study's thumbnail and opens the viewer.
 * For the specialist it stands in for the reading worklist until the worklist API lands.
 */
import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { useI18n } from "../../i18n";
import { EmptyState, ErrorState, Loading } from "../../ui/states";
import { TAG, num, personName, searchStudies, str, studyThumbnail, type DicomJson } from "../api";
import { Thumb } from "../Thumb";
import { WorklistTabs } from "../reading/WorklistTabs";
import { formatDicomDate } from "../format";

const PAGE = 20;
const MODALITIES = ["CT", "MR", "CR", "DX", "DR", "US", "MG", "XA", "RF", "NM", "PT", "OT"];

export function StudyListPage({ area }: { area: "imaging" | "readingWorklist" }) {
  const { t } = useI18n();
  const tl = t.imaging.list;
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const query = {
    patientId: params.get("pid") ?? "",
    patientName: params.get("name") ?? "",
    dateFrom: params.get("from") ?? "",
    dateTo: params.get("to") ?? "",
    modality: params.get("mod") ?? "",
  };
  const page = Math.max(0, Number(params.get("page") ?? "0") || 0);
  const [form, setForm] = useState(query);
  const [studies, setStudies] = useState<DicomJson[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [reload, setReload] = useState(0);
  const key = params.toString();

  useEffect(() => {
    const controller = new AbortController();
    setStudies(null);
    setError(null);
    searchStudies({ ...query, limit: PAGE + 1, offset: page * PAGE }, controller.signal)
      .then(setStudies)
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(err);
      });
    return () => controller.abort();
  }, [key, reload]); // eslint-disable-line react-hooks/exhaustive-deps

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const next = new URLSearchParams();
    if (params.get("tab")) next.set("tab", params.get("tab")!);
    if (form.patientId.trim()) next.set("pid", form.patientId.trim());
    if (form.patientName.trim()) next.set("name", form.patientName.trim());
    if (form.dateFrom) next.set("from", form.dateFrom);
    if (form.dateTo) next.set("to", form.dateTo);
    if (form.modality) next.set("mod", form.modality);
    setParams(next);
  };
  const goPage = (n: number) => {
    const next = new URLSearchParams(params);
    if (n > 0) next.set("page", String(n));
    else next.delete("page");
    setParams(next);
  };

  const rows = studies?.slice(0, PAGE) ?? [];
  const hasNext = (studies?.length ?? 0) > PAGE;
  const open = (uid: string) => navigate(`/imaging/studies/${encodeURIComponent(uid)}`);

  return (
    <div className="page imaging-page" data-testid={`area-page-${area}`}>
      <header className="page-header page-header-row">
        <div>
          <h1>{area === "readingWorklist" ? tl.worklistTitle : tl.title}</h1>
          <p className="muted">{tl.summary}</p>
        </div>
        {area === "readingWorklist" ? <WorklistTabs active="search" /> : null}
        {area === "imaging" ? (
          <Link to="/imaging/new" className="btn btn-primary" data-testid="imaging-new-upload">
            {tl.newUpload}
          </Link>
        ) : null}
      </header>

      <form className="panel imaging-search" onSubmit={submit} data-testid="imaging-search">
        <label className="field">
          <span>{tl.patientId}</span>
          <input value={form.patientId} onChange={(e) => setForm({ ...form, patientId: e.target.value })} data-testid="imaging-search-pid" />
        </label>
        <label className="field">
          <span>{tl.patientName}</span>
          <input value={form.patientName} onChange={(e) => setForm({ ...form, patientName: e.target.value })} data-testid="imaging-search-name" />
        </label>
        <label className="field">
          <span>{tl.dateFrom}</span>
          <input type="date" value={form.dateFrom} onChange={(e) => setForm({ ...form, dateFrom: e.target.value })} data-testid="imaging-search-from" />
        </label>
        <label className="field">
          <span>{tl.dateTo}</span>
          <input type="date" value={form.dateTo} onChange={(e) => setForm({ ...form, dateTo: e.target.value })} data-testid="imaging-search-to" />
        </label>
        <label className="field">
          <span>{tl.modality}</span>
          <select value={form.modality} onChange={(e) => setForm({ ...form, modality: e.target.value })} data-testid="imaging-search-modality">
            <option value="">{tl.anyModality}</option>
            {MODALITIES.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <div className="imaging-search-buttons">
          <button type="submit" className="btn btn-primary" data-testid="imaging-search-submit">
            {tl.search}
          </button>
          <button
            type="button"
            className="btn btn-ghost"
            onClick={() => {
              setForm({ patientId: "", patientName: "", dateFrom: "", dateTo: "", modality: "" });
              setParams(new URLSearchParams(params.get("tab") ? { tab: params.get("tab")! } : {}));
            }}
          >
            {tl.reset}
          </button>
        </div>
      </form>

      <section className="panel">
        {error ? (
          <ErrorState error={error} onRetry={() => setReload((n) => n + 1)} />
        ) : studies === null ? (
          <Loading />
        ) : rows.length === 0 ? (
          <EmptyState title={tl.none} />
        ) : (
          <table className="imaging-table" data-testid="imaging-studies">
            <thead>
              <tr>
                <th>{tl.thumbnail}</th>
                <th>{tl.patient}</th>
                <th>{tl.patientId}</th>
                <th>{tl.date}</th>
                <th>{tl.modality}</th>
                <th>{tl.description}</th>
                <th>{tl.counts}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {rows.map((ds) => {
                const uid = str(ds, TAG.StudyInstanceUID);
                const sex = str(ds, TAG.PatientSex);
                const modalities = (ds[TAG.ModalitiesInStudy]?.Value ?? []).join(", ");
                return (
                  <tr key={uid} className="clickable" onClick={() => open(uid)} data-testid="imaging-study-row" data-study={uid}>
                    <td className="imaging-thumb-cell">
                      <Thumb path={studyThumbnail(uid)} testId="imaging-study-thumb" />
                    </td>
                    <td>
                      <strong>{personName(ds) || "—"}</strong>
                      <div className="muted small">
                        {[t.imaging.sex[sex] ?? sex, formatDicomDate(str(ds, TAG.PatientBirthDate))].filter(Boolean).join(" · ")}
                      </div>
                    </td>
                    <td>{str(ds, TAG.PatientID)}</td>
                    <td>{formatDicomDate(str(ds, TAG.StudyDate))}</td>
                    <td>{modalities}</td>
                    <td>{str(ds, TAG.StudyDescription)}</td>
                    <td>
                      {num(ds, TAG.NumberOfStudyRelatedSeries) ?? "—"} / {num(ds, TAG.NumberOfStudyRelatedInstances) ?? "—"}
                    </td>
                    <td>
                      <Link to={`/imaging/studies/${encodeURIComponent(uid)}`} className="btn btn-secondary btn-small" onClick={(e) => e.stopPropagation()} data-testid="imaging-study-open">
                        {tl.open}
                      </Link>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        {studies && (page > 0 || hasNext) ? (
          <div className="imaging-pager">
            <button type="button" className="btn btn-secondary btn-small" disabled={page === 0} onClick={() => goPage(page - 1)} data-testid="imaging-prev">
              {tl.prev}
            </button>
            <span className="muted">{tl.page(page + 1)}</span>
            <button type="button" className="btn btn-secondary btn-small" disabled={!hasNext} onClick={() => goPage(page + 1)} data-testid="imaging-next">
              {tl.next}
            </button>
          </div>
        ) : null}
      </section>
    </div>
  );
}
