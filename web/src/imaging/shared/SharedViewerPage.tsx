/**
 * /imaging/shared#token=... — a share link opened without signing in: the study read-only in the same
 * StudyViewer the archive uses (series thumbnails, stack scrolling, window/level presets), reading the public
 * share path with the link's token. The header shows what the shared metadata carries (name, sex, study
 * date, description; no patient ID or birth date) and when the link stops working. A revoked or expired
 * link (410) shows "链接已失效", also when it happens while the page is open; an unknown token says so.
 */
import { useEffect, useMemo, useState } from "react";
import { formatTime, useI18n } from "../../i18n";
import { LanguageSwitch } from "../../shell/LanguageSwitch";
import { LogoMark } from "../../ui/Icon";
import { ErrorState, Loading } from "../../ui/states";
import { ApiError } from "../../api/errors";
import { TAG, personName, str, type DicomJson } from "../api";
import { formatDicomDate } from "../format";
import { StudyViewer } from "../viewer/StudyViewer";
import { isGone, sharedMetadata, sharedSource, sharedStudy, tokenFromLocation, type SharedStudy } from "./api";
import "../imaging.css";

type State =
  | { kind: "loading" }
  | { kind: "ready"; study: SharedStudy; instances: DicomJson[] }
  | { kind: "gone" }
  | { kind: "invalid" }
  | { kind: "error"; error: unknown };

export function SharedViewerPage() {
  const { t, locale } = useI18n();
  const ts = t.imaging.shared;
  const [token] = useState(() => tokenFromLocation());
  const [state, setState] = useState<State>({ kind: "loading" });
  const [reload, setReload] = useState(0);

  useEffect(() => {
    if (!token) {
      setState({ kind: "invalid" });
      return;
    }
    const controller = new AbortController();
    setState({ kind: "loading" });
    Promise.all([sharedStudy(token, controller.signal), sharedMetadata(token, controller.signal)])
      .then(([study, instances]) => setState({ kind: "ready", study, instances }))
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        if (isGone(err)) setState({ kind: "gone" });
        else if (err instanceof ApiError && err.status === 404) setState({ kind: "invalid" });
        else setState({ kind: "error", error: err });
      });
    return () => controller.abort();
  }, [token, reload]);

  // the page title names the shared study, never the patient
  useEffect(() => {
    document.title = `${ts.title} · ${t.app.name}`;
  }, [ts.title, t.app.name]);

  const source = useMemo(
    () => (state.kind === "ready" ? sharedSource(token, state.instances, () => setState({ kind: "gone" })) : null),
    [state, token],
  );

  const first = state.kind === "ready" ? state.instances[0] : undefined;
  const sex = str(first, TAG.PatientSex);
  const modalities = state.kind === "ready" ? [...new Set(state.instances.map((ds) => str(ds, TAG.Modality)).filter(Boolean))] : [];
  const corners = (current: DicomJson | undefined) => ({
    topLeft: [personName(first), t.imaging.sex[sex] ?? sex].filter(Boolean),
    topRight: [
      formatDicomDate(str(first, TAG.StudyDate)),
      str(first, TAG.StudyDescription),
      [str(current, TAG.Modality), str(current, TAG.SeriesDescription)].filter(Boolean).join(" "),
    ].filter(Boolean),
  });

  return (
    <div className="shared-shell" data-testid="shared-viewer-page" data-state={state.kind}>
      <header className="topbar shared-topbar">
        <span className="brand">
          <LogoMark size={28} />
          <span>{t.app.name}</span>
          <span className="shared-tag">{ts.readOnly}</span>
        </span>
        <LanguageSwitch />
      </header>
      <main className="shared-content">
        {state.kind === "loading" ? <Loading label={t.imaging.viewer.loading} /> : null}
        {state.kind === "error" ? <ErrorState error={state.error} onRetry={() => setReload((n) => n + 1)} /> : null}
        {state.kind === "gone" || state.kind === "invalid" ? (
          <section className="panel shared-gone" role="alert" data-testid={state.kind === "gone" ? "shared-gone" : "shared-invalid"}>
            <h1>{state.kind === "gone" ? ts.gone : ts.invalid}</h1>
            <p className="muted">{state.kind === "gone" ? ts.goneText : ts.invalidText}</p>
          </section>
        ) : null}
        {state.kind === "ready" && source ? (
          <div className="page imaging-page imaging-viewer-page shared-page">
            <header className="imaging-viewer-head shared-head" data-testid="shared-study-head">
              <strong data-testid="shared-patient">{personName(first)}</strong>
              <span className="muted">
                {[t.imaging.sex[sex] ?? sex, formatDicomDate(str(first, TAG.StudyDate)), str(first, TAG.StudyDescription), modalities.join("/")]
                  .filter(Boolean)
                  .join(" · ")}
              </span>
              <span className="muted">{ts.counts(state.study.series.length, state.study.num_instances)}</span>
              {state.study.expires_at ? (
                <span className="shared-expiry" data-testid="shared-expiry">
                  {ts.expires(formatTime(new Date(state.study.expires_at), locale, true))}
                </span>
              ) : null}
            </header>
            <StudyViewer source={source} corners={corners} onError={(err) => setState(isGone(err) ? { kind: "gone" } : { kind: "error", error: err })} />
            <p className="muted small">{ts.notice}</p>
          </div>
        ) : null}
      </main>
    </div>
  );
}
