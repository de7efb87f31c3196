/**
 * The critical-value banner over every page of a clinical user while an alert is open: red, no sound,
 * impossible to overlook; each alert links to its ECG and can be acknowledged (optionally with a note).
 */
import { useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { useUser } from "../../auth/useSession";
import { formatTime, useI18n } from "../../i18n";
import { errorMessage } from "../../ui/states";
import type { Alert } from "../api";
import { ACK_ROLES, hasAny } from "../format";
import { useEcgAlerts } from "./AlertsProvider";

const SHOWN = 3;

export function CriticalAlertBanner() {
  const { t, lang, locale } = useI18n();
  const user = useUser();
  const { alerts, mode } = useEcgAlerts();
  const [expanded, setExpanded] = useState(false);
  const ta = t.ecg.alerts;

  // the tab's title says it too, for a doctor working in another tab
  useEffect(() => {
    if (alerts.length === 0) return;
    const base = t.app.name;
    document.title = `【${ta.title} ${alerts.length}】${base}`;
    return () => {
      document.title = base;
    };
  }, [alerts.length, t.app.name, ta.title]);

  if (alerts.length === 0) return null;
  const canAck = hasAny(user.roles, ACK_ROLES);
  const reader = user.roles.includes("specialist");
  // the alerts assigned to this user come first (stable: newest first within each group)
  const ordered = [...alerts].sort((a, b) => Number(Boolean(b.for_you)) - Number(Boolean(a.for_you)));
  const shown = expanded ? ordered : ordered.slice(0, SHOWN);
  const mine = alerts.some((a) => a.for_you);

  return (
    <section
      className={`critical-banner${mine ? " critical-banner-mine" : ""}`}
      role="alert"
      aria-live="assertive"
      data-testid="critical-banner"
      data-count={alerts.length}
      data-for-you={mine ? "true" : "false"}
    >
      <header className="critical-banner-head">
        <span className="critical-mark" aria-hidden="true">
          !
        </span>
        <strong>{ta.headline(alerts.length)}</strong>
        {mine ? <span className="critical-tag critical-tag-mine">{ta.forYou}</span> : null}
        {mode === "polling" ? <span className="critical-feed">{ta.polling}</span> : null}
      </header>
      <ul>
        {shown.map((alert) => (
          <AlertRow
            key={alert.id}
            alert={alert}
            canAck={canAck}
            link={reader ? `/ecg/reading/${alert.recording_id}` : `/ecg/recordings/${alert.recording_id}`}
            when={formatTime(new Date(alert.created_at), locale, true)}
            message={lang === "en" ? alert.message_en : alert.message_zh}
          />
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

function AlertRow({ alert, canAck, link, when, message }: { alert: Alert; canAck: boolean; link: string; when: string; message: string }) {
  const { t } = useI18n();
  const ta = t.ecg.alerts;
  const { acknowledge } = useEcgAlerts();
  const [open, setOpen] = useState(false);
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

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
      data-testid="critical-alert"
      data-alert-id={alert.id}
      data-recording-id={alert.recording_id}
      data-for-you={alert.for_you ? "true" : "false"}
    >
      <div className="critical-text">
        <span className="critical-tags">
          {alert.for_you ? (
            <span className="critical-tag critical-tag-mine" data-testid="critical-for-you">
              {ta.forYou}
            </span>
          ) : null}
          {alert.unassigned ? (
            <span className="critical-tag" data-testid="critical-unassigned">
              {ta.unassigned}
            </span>
          ) : null}
          <strong data-testid="critical-message">{message}</strong>
        </span>
        <span className="critical-meta">
          {when}
          {alert.escalation_level > 0 ? ` · ${ta.escalated(alert.escalation_level)}` : ""}
          {alert.to_admin ? ` · ${ta.toAdmin}` : ""}
          {alert.priority !== "routine" ? ` · ${t.ecg.priority[alert.priority]}` : ""}
          {!alert.for_you && alert.assigned_names?.length ? ` · ${ta.assignedTo(alert.assigned_names.join("、"))}` : ""}
        </span>
      </div>
      <div className="critical-actions">
        <Link to={link} className="btn btn-small critical-btn-open" data-testid="critical-open">
          {ta.open}
        </Link>
        {canAck && !open ? (
          <button type="button" className="btn btn-small critical-btn-ack" onClick={() => setOpen(true)} data-testid="critical-ack">
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
            data-testid="critical-ack-note"
            aria-label={ta.notePlaceholder}
          />
          <button type="submit" className="btn btn-small critical-btn-ack" disabled={busy} data-testid="critical-ack-confirm">
            {busy ? t.common.loading : ta.confirmAck}
          </button>
          <button type="button" className="btn btn-small btn-ghost critical-btn-cancel" onClick={() => setOpen(false)} disabled={busy}>
            {t.ecg.cancel}
          </button>
          {error ? <span className="critical-error">{errorMessage(error, t)}</span> : null}
        </form>
      ) : null}
    </li>
  );
}

/** The number of open critical values, next to the ECG item of the navigation. */
export function NavAlertCount({ area }: { area: string }) {
  const { alerts } = useEcgAlerts();
  const { t } = useI18n();
  if (!["ecg", "ecgUpload", "ecgReading"].includes(area) || alerts.length === 0) return null;
  return (
    <span className="nav-alert-count" data-testid="nav-alert-count" title={t.ecg.alerts.headline(alerts.length)}>
      {alerts.length}
    </span>
  );
}
