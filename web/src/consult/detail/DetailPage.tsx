/**
 * /consults/:id — everything about one consult: the invitation, attachments (opened in the imaging viewer or
 * the ECG viewer), consent, history, the actions this user may take, booking, the opinion, chat, recordings
 * and the way into the video room.
 */
import { useCallback, useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useUser } from "../../auth/useSession";
import { useI18n } from "../../i18n";
import { ApiError } from "../../api/errors";
import { Icon } from "../../ui/Icon";
import { Loading } from "../../ui/states";
import {
  consentFilePath,
  download,
  getConsult,
  getOpinion,
  listRecordings,
  recordingFilePath,
  type Consult,
  type Opinion,
  type Recording,
} from "../api";
import { ChatPanel } from "../chat/ChatPanel";
import { formatBytes, consultError, ConsultErrorState, Deadline, patientLine, sideOf, StatusChip, UrgencyBadge, useDateTime, useFacilityName, useNow } from "../format";
import { Actions } from "./Actions";
import { Booking } from "./Booking";
import { OpinionPanel } from "./OpinionPanel";

const ROOM_STATES = ["accepted", "scheduled", "in_session", "opinion_written"];

export function DetailPage() {
  const { id = "" } = useParams();
  const [consult, setConsult] = useState<Consult | null>(null);
  const [opinion, setOpinion] = useState<Opinion | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(() => {
    Promise.all([getConsult(id), getOpinion(id).catch(() => null)])
      .then(([c, o]) => {
        setConsult(c);
        setOpinion(o);
        setError(null);
      })
      .catch((err: unknown) => setError(err));
  }, [id]);

  useEffect(() => {
    load();
    const timer = setInterval(load, 20_000); // the other side acts too
    return () => clearInterval(timer);
  }, [load]);

  if (error && !consult) {
    return (
      <div className="page cs-page">
        <BackLink />
        <ConsultErrorState error={error} onRetry={load} />
      </div>
    );
  }
  if (!consult) return <Loading />;
  return <Detail consult={consult} opinion={opinion} setOpinion={setOpinion} reload={load} />;
}

function BackLink() {
  const { t } = useI18n();
  return (
    <Link to="/consults" className="back-link">
      ← {t.consult.detail.back}
    </Link>
  );
}

function Detail({
  consult,
  opinion,
  setOpinion,
  reload,
}: {
  consult: Consult;
  opinion: Opinion | null;
  setOpinion: (o: Opinion) => void;
  reload: () => void;
}) {
  const { t } = useI18n();
  const td = t.consult.detail;
  const user = useUser();
  const side = sideOf(consult, user);
  const when = useDateTime();
  const facility = useFacilityName();
  const now = useNow(15_000);
  const participant = side.participant;
  const chatOpen = consult.status !== "draft" && consult.status !== "cancelled";

  return (
    <div className="page cs-page cs-detail" data-testid="consult-detail" data-status={consult.status} data-id={consult.id}>
      <BackLink />
      <header className="cs-detail-header panel">
        <div className="cs-detail-title">
          <h1>
            {td.title(consult.patient_name)} <span className="muted cs-patient-line">{patientLine(consult, t)}</span>
          </h1>
          <div className="cell-badges">
            <StatusChip status={consult.status} />
            <UrgencyBadge urgency={consult.urgency} />
            <Deadline consult={consult} now={now} withLabel />
          </div>
        </div>
        <Actions consult={consult} opinion={opinion} onDone={reload} />
        {ROOM_STATES.includes(consult.status) && participant ? (
          <div className="cs-room-cta">
            <span className="muted small">{td.roomHint}</span>
            <Link to={`/consults/${consult.id}/room`} className="btn btn-primary" data-testid="consult-join-room">
              <Icon name="video" size={18} /> {t.consult.actions.join}
            </Link>
          </div>
        ) : null}
      </header>

      <div className="cs-detail-grid">
        <div className="cs-detail-main">
          <section className="panel" data-testid="consult-summary">
            <h2>{td.summary}</h2>
            <dl className="cs-meta">
              <div>
                <dt>{td.from}</dt>
                <dd>
                  {facility(consult.facility_id)} · {consult.requester_name ?? ""}
                </dd>
              </div>
              <div>
                <dt>{td.target}</dt>
                <dd>{facility(consult.target_facility_id)}</dd>
              </div>
              <div>
                <dt>{td.specialty}</dt>
                <dd>{consult.specialty ?? "—"}</dd>
              </div>
              <div>
                <dt>{td.consultant}</dt>
                <dd data-testid="consult-consultant">{consult.consultant_name ?? "—"}</dd>
              </div>
            </dl>
            <div className="cs-text-block">
              <h3>{td.reason}</h3>
              <p data-testid="consult-view-reason">{consult.reason}</p>
            </div>
            <div className="cs-text-block">
              <h3>{td.question}</h3>
              <p>{consult.question}</p>
            </div>
            <div className="cs-text-block">
              <h3>{td.clinicalSummary}</h3>
              <p className="cs-pre">{consult.clinical_summary}</p>
            </div>
            {consult.decline_reason ? (
              <div className="cs-text-block cs-declined">
                <h3>{td.declineReason}</h3>
                <p data-testid="consult-decline-reason">{consult.decline_reason}</p>
              </div>
            ) : null}
          </section>

          <Attachments consult={consult} />

          {consult.status !== "draft" ? (
            <OpinionPanel consult={consult} opinion={opinion} onChange={(o) => (setOpinion(o), reload())} onReload={reload} />
          ) : null}

          {consult.status !== "draft" && consult.status !== "submitted" ? <Booking consult={consult} onDone={reload} /> : null}
          {participant && consult.status !== "draft" ? <Recordings consultId={consult.id} /> : null}
        </div>

        <aside className="cs-detail-side">
          {chatOpen ? <ChatPanel consultId={consult.id} /> : null}
          <ConsentView consult={consult} />
          <section className="panel" data-testid="consult-history">
            <h2>{td.history}</h2>
            {consult.transitions?.length ? (
              <ol className="cs-timeline">
                {consult.transitions.map((tr, i) => (
                  <li key={tr.id ?? i} data-testid="consult-history-item" data-action={tr.action}>
                    <span className="cs-dot" />
                    <div>
                      <strong>{(t.consult.actions as Record<string, string>)[tr.action] ?? t.consult.status[tr.to_status] ?? tr.action}</strong>{" "}
                      <span className="muted small">→ {t.consult.status[tr.to_status] ?? tr.to_status}</span>
                      <div className="muted small">
                        {when(tr.at)}
                        {tr.actor_name ? ` · ${td.by(tr.actor_name)}` : ""}
                      </div>
                      {typeof tr.detail?.reason === "string" && tr.detail.reason ? <div className="small">{tr.detail.reason}</div> : null}
                    </div>
                  </li>
                ))}
              </ol>
            ) : (
              <p className="muted">{td.noHistory}</p>
            )}
          </section>
        </aside>
      </div>
    </div>
  );
}

function Attachments({ consult }: { consult: Consult }) {
  const { t } = useI18n();
  const td = t.consult.detail;
  return (
    <section className="panel" data-testid="consult-attachments">
      <h2>{td.attachments}</h2>
      {consult.attachments.length === 0 ? (
        <p className="muted">{td.noAttachments}</p>
      ) : (
        <ul className="cs-attach-list">
          {consult.attachments.map((a) => (
            <li key={`${a.kind}:${a.ref}`} data-testid="consult-attachment" data-kind={a.kind}>
              <span className="badge badge-muted">{t.consult.kinds[a.kind] ?? a.kind}</span>
              <span className="cs-attach-label">{a.label ?? a.ref}</span>
              {a.kind === "imaging_study" ? (
                <Link to={`/imaging/studies/${encodeURIComponent(a.ref)}`} className="btn btn-secondary btn-small" data-testid="consult-open-study">
                  {td.openStudy}
                </Link>
              ) : a.kind === "ecg_recording" ? (
                <Link to={`/consults/${consult.id}/ecg/${encodeURIComponent(a.ref)}`} className="btn btn-secondary btn-small" data-testid="consult-open-ecg">
                  {td.openEcg}
                </Link>
              ) : null}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function ConsentView({ consult }: { consult: Consult }) {
  const { t } = useI18n();
  const td = t.consult.detail;
  const when = useDateTime();
  const [error, setError] = useState<string | null>(null);
  const c = consult.consent;
  return (
    <section className="panel" data-testid="consult-consent-view" data-recorded={Boolean(c)}>
      <h2>{td.consent}</h2>
      {c ? (
        <div className="cs-consent-done">
          <span className="badge cs-ok">✓ {td.consentMethod[c.method] ?? c.method}</span>
          <span>{t.consult.form.consentBy(c.signer_name, c.relation)}</span>
          <span className="muted small">{td.recordedBy(c.recorded_by_name ?? "", when(c.recorded_at))}</span>
          {c.has_file ? (
            <button
              type="button"
              className="btn btn-link small"
              onClick={() => download(consentFilePath(consult.id), c.content_type === "application/pdf" ? "consent.pdf" : "consent.jpg").catch((err: unknown) => setError(consultError(err, t)))}
            >
              {td.consentFile}
            </button>
          ) : null}
          {error ? <span className="form-error small">{error}</span> : null}
        </div>
      ) : (
        <p className="muted">{td.noConsent}</p>
      )}
    </section>
  );
}

function Recordings({ consultId }: { consultId: string }) {
  const { t } = useI18n();
  const td = t.consult.detail;
  const when = useDateTime();
  const [items, setItems] = useState<Recording[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    listRecordings(consultId)
      .then(setItems)
      .catch((err: unknown) => (err instanceof ApiError && err.status === 404 ? setItems([]) : setError(err)));
  }, [consultId]);
  return (
    <section className="panel" data-testid="consult-recordings">
      <h2>{td.recordings}</h2>
      {error ? (
        <ConsultErrorState error={error} />
      ) : !items ? (
        <Loading />
      ) : items.length === 0 ? (
        <p className="muted">{td.noRecordings}</p>
      ) : (
        <ul className="cs-attach-list">
          {items.map((r) => (
            <li key={r.id} data-testid="consult-recording">
              <span className="badge badge-muted">{r.kind === "audio" ? td.audioTrack : td.videoTrack}</span>
              <span className="cs-attach-label">
                {td.recordingOf(when(r.started_at))} · {Math.round(r.duration_seconds)}s · {formatBytes(r.size_bytes)}
              </span>
              <button type="button" className="btn btn-secondary btn-small" onClick={() => void download(recordingFilePath(r.id), `recording-${r.id.slice(0, 8)}.webm`)}>
                {td.downloadRecording}
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
