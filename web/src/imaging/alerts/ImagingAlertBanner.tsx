/**
 * Imaging critical findings on screen, in the ECG critical-value banner's form (its classes in ecg.css): red
 * over every page while one is open for the user's own facility, each linking to the study and acknowledged
 * there or here (optionally with a note); the reading centre sees its open findings in a calmer banner
 * until the requesting facility confirms. StudyAlert: the open finding of one study, on its viewer (the banner
 * leaves that one out there).
 */
import { useState } from "react";
import { Link, useLocation } from "react-router-dom";
import { useUser } from "../../auth/useSession";
import { formatTime, useI18n } from "../../i18n";
import { errorMessage } from "../../ui/states";
import type { ImagingAlert } from "./api";
import { IMAGING_ACK_ROLES, useImagingAlerts } from "./ImagingAlertsProvider";

const SHOWN = 3;

export function ImagingAlertBanner() {
  const { t } = useI18n();
  const { alerts: all, mode } = useImagingAlerts();
  const [expanded, setExpanded] = useState(false);
  const ta = t.imaging.alerts;
  // the study on screen shows its own finding (StudyAlert); the banner carries the others
  const path = useLocation().pathname;
  const alerts = all.filter((a) => path !== `/imaging/studies/${encodeURIComponent(a.study_instance_uid)}`);
  if (alerts.length === 0) return null;
  const ordered = [...alerts].sort((a, b) => Number(Boolean(b.for_you)) - Number(Boolean(a.for_you)));
  const shown = expanded ? ordered : ordered.slice(0, SHOWN);
  const mine = alerts.filter((a) => a.for_you).length;
  return (
    <section
      className={`critical-banner imaging-critical-banner${mine ? " critical-banner-mine" : " imaging-critical-watch"}`}
      role="alert"
      aria-live="assertive"
      data-testid="imaging-critical-banner"
      data-count={alerts.length}
      data-for-you={mine ? "true" : "false"}
    >
      <header className="critical-banner-head">
        <span className="critical-mark" aria-hidden="true">
          !
        </span>
        <strong>{mine ? ta.headline(mine) : ta.watching(alerts.length)}</strong>
        {mode === "polling" ? <span className="critical-feed">{ta.polling}</span> : null}
      </header>
      <ul>
        {shown.map((alert) => (
          <ImagingAlertRow key={alert.id} alert={alert} />
        ))}
      </ul>
      {alerts.length > SHOWN ? (
        <button type="button" className="critical-more" onClick={() => setExpanded((e) => !e)}>
          {expanded ? ta.fewer : ta.more(alerts.length - SHOWN)}
        </button>
      ) : null}
    </section>
  );
}

/** One finding: what was found, who read it, when; open the study; acknowledge (own facility's doctors). */
export function ImagingAlertRow({ alert, showOpen = true }: { alert: ImagingAlert; showOpen?: boolean }) {
  const { t, lang, locale } = useI18n();
  const ta = t.imaging.alerts;
  const user = useUser();
  const { acknowledge } = useImagingAlerts();
  const [open, setOpen] = useState(false);
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const canAck = Boolean(alert.for_you) && user.roles.some((r) => IMAGING_ACK_ROLES.includes(r));

  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      await acknowledge(alert.id, note.trim() || undefined);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <li
      className={`critical-item${alert.for_you ? " critical-item-mine" : ""}`}
      data-testid="imaging-critical-alert"
      data-alert-id={alert.id}
      data-study={alert.study_instance_uid}
      data-for-you={alert.for_you ? "true" : "false"}
    >
      <div className="critical-text">
        <span className="critical-tags">
          {alert.for_you ? <span className="critical-tag critical-tag-mine">{ta.forYou}</span> : <span className="critical-tag">{ta.awaiting}</span>}
          <strong data-testid="imaging-critical-message">{lang === "en" ? alert.message_en : alert.message_zh}</strong>
        </span>
        <span className="critical-meta">
          {formatTime(new Date(alert.created_at), locale, true)} · {ta.reader(alert.reader_name)}
          {alert.signed ? ` · ${ta.signed}` : ` · ${ta.unsigned}`}
          {alert.escalation_level > 0 ? ` · ${ta.escalated(alert.escalation_level)}` : ""}
          {alert.priority !== "routine" ? ` · ${t.imaging.priority[alert.priority]}` : ""}
        </span>
      </div>
      <div className="critical-actions">
        {showOpen ? (
          <Link to={`/imaging/studies/${encodeURIComponent(alert.study_instance_uid)}`} className="btn btn-small critical-btn-open" data-testid="imaging-critical-open">
            {ta.open}
          </Link>
        ) : null}
        {canAck && !open ? (
          <button type="button" className="btn btn-small critical-btn-ack" onClick={() => setOpen(true)} data-testid="imaging-critical-ack">
            {ta.acknowledge}
          </button>
        ) : null}
      </div>
      {open ? (
        <form
          className="critical-ack-form"
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          <input
            value={note}
            onChange={(e) => setNote(e.target.value)}
            placeholder={ta.notePlaceholder}
            maxLength={1000}
            data-testid="imaging-critical-ack-note"
            aria-label={ta.notePlaceholder}
          />
          <button type="submit" className="btn btn-small critical-btn-ack" disabled={busy} data-testid="imaging-critical-ack-confirm">
            {busy ? t.common.loading : ta.confirmAck}
          </button>
          <button type="button" className="btn btn-small btn-ghost critical-btn-cancel" onClick={() => setOpen(false)} disabled={busy}>
            {t.imaging.report.cancel}
          </button>
          {error ? <span className="critical-error">{errorMessage(error, t)}</span> : null}
        </form>
      ) : null}
    </li>
  );
}

/** The open critical finding of one study, above its viewer. */
export function StudyAlert({ study }: { study: string }) {
  const { forStudy } = useImagingAlerts();
  const alert = forStudy(study);
  if (!alert) return null;
  return (
    <section className="critical-banner imaging-critical-banner imaging-study-alert" role="alert" data-testid="imaging-study-alert">
      <ul>
        <ImagingAlertRow alert={alert} showOpen={false} />
      </ul>
    </section>
  );
}
