/** The open critical value of one recording, on its own page, with the acknowledge button. */
import { useState } from "react";
import { useUser } from "../../auth/useSession";
import { formatTime, useI18n } from "../../i18n";
import { errorMessage } from "../../ui/states";
import { ACK_ROLES, hasAny } from "../format";
import { useEcgAlerts } from "./AlertsProvider";

export function RecordingAlert({ recordingId }: { recordingId: string }) {
  const { t, lang, locale } = useI18n();
  const user = useUser();
  const { forRecording, acknowledge } = useEcgAlerts();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState("");
  const alert = forRecording(recordingId);
  if (!alert) return null;
  const ta = t.ecg.alerts;
  return (
    <section className="recording-alert" role="alert" data-testid="recording-alert">
      <div>
        {alert.for_you ? <span className="critical-tag critical-tag-mine">{ta.forYou}</span> : null}
        {alert.unassigned ? <span className="critical-tag">{ta.unassigned}</span> : null}
        <strong>{lang === "en" ? alert.message_en : alert.message_zh}</strong>
        <span className="critical-meta"> · {formatTime(new Date(alert.created_at), locale, true)}</span>
      </div>
      {hasAny(user.roles, ACK_ROLES) ? (
        <form
          className="critical-ack-form"
          onSubmit={(e) => {
            e.preventDefault();
            setBusy(true);
            setError(null);
            acknowledge(alert.id, note.trim() || undefined).catch((err: unknown) => {
              setError(err);
              setBusy(false);
            });
          }}
        >
          <input value={note} onChange={(e) => setNote(e.target.value)} placeholder={ta.notePlaceholder} aria-label={ta.notePlaceholder} />
          <button type="submit" className="btn btn-small critical-btn-ack" disabled={busy} data-testid="recording-alert-ack">
            {ta.acknowledge}
          </button>
          {error ? <span className="critical-error">{errorMessage(error, t)}</span> : null}
        </form>
      ) : (
        <span className="muted">{ta.cannotAck}</span>
      )}
    </section>
  );
}
