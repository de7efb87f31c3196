/**
 * The consult's time: the booked slot (with its .ics), the consultant's free slots to book or reschedule to
 * (requester, once accepted), and for the consultant a small form publishing availability.
 */
import { useCallback, useEffect, useState } from "react";
import { useUser } from "../../auth/useSession";
import { useI18n } from "../../i18n";
import { ApiError } from "../../api/errors";
import { book, calendarPath, download, listSlots, publishAvailability, type Consult, type Slot } from "../api";
import { consultError, sideOf, useDateTime } from "../format";

function localInput(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function Booking({ consult, onDone }: { consult: Consult; onDone: () => void }) {
  const { t } = useI18n();
  const td = t.consult.detail;
  const ta = t.consult.actions;
  const when = useDateTime();
  const user = useUser();
  const side = sideOf(consult, user);
  const s = consult.status;
  const canBook = consult.allowed_actions.includes("schedule") || consult.allowed_actions.includes("reschedule");
  const [slots, setSlots] = useState<Slot[] | null>(null);
  const [picking, setPicking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(() => {
    listSlots(consult.id)
      .then((page) => setSlots(page.items.filter((x) => x.free && new Date(x.ends_at).getTime() > Date.now())))
      .catch((err: unknown) => {
        setSlots([]);
        setError(consultError(err, t));
      });
  }, [consult.id, consult.consultant_id]);

  useEffect(() => {
    if (canBook && (!consult.booking || picking)) load();
  }, [canBook, picking, consult.booking, load]);

  const choose = async (slot: Slot) => {
    setBusy(true);
    setError(null);
    try {
      await book(consult.id, slot.id);
      setPicking(false);
      onDone();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 409 && err.code === "slot_taken" ? td.slotTaken : consultError(err, t));
      load();
    } finally {
      setBusy(false);
    }
  };

  const showSlots = canBook && (!consult.booking || picking);
  return (
    <section className="panel cs-booking" data-testid="consult-booking">
      <header className="cs-panel-header">
        <h2>{td.booking}</h2>
        {consult.booking ? (
          <button
            type="button"
            className="btn btn-secondary btn-small"
            onClick={() => download(calendarPath(consult.id), `consult-${consult.id.slice(0, 8)}.ics`).catch((err: unknown) => setError(consultError(err, t)))}
            data-testid="consult-ics"
          >
            {ta.ics}
          </button>
        ) : null}
      </header>
      {consult.booking ? (
        <p className="cs-booked" data-testid="consult-booked">
          {td.bookedAt(`${when(consult.booking.starts_at)} – ${when(consult.booking.ends_at).slice(-5)}`)}
        </p>
      ) : (
        <p className="muted">{td.notBooked}</p>
      )}
      {canBook && consult.booking && !picking ? (
        <button type="button" className="btn btn-secondary btn-small" onClick={() => setPicking(true)} data-testid="consult-reschedule">
          {ta.reschedule}
        </button>
      ) : null}
      {showSlots ? (
        <div className="cs-slots">
          <h3>{td.slotsTitle}</h3>
          {slots === null ? (
            <p className="muted">{t.common.loading}</p>
          ) : slots.length === 0 ? (
            <p className="muted">{td.noSlots}</p>
          ) : (
            <ul className="cs-slot-list">
              {slots.map((slot) => (
                <li key={slot.id}>
                  <button type="button" className="btn btn-secondary btn-small" disabled={busy} onClick={() => void choose(slot)} data-testid="consult-slot" data-slot={slot.id}>
                    {when(slot.starts_at)}–{when(slot.ends_at).slice(-5)}
                    {slot.specialist_name ? <span className="muted"> · {slot.specialist_name}</span> : null}
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
      ) : null}
      {(side.consultant || side.targetSide) && ["accepted", "scheduled", "in_session"].includes(s) ? <Publish onDone={load} /> : null}
      {error ? (
        <p className="form-error" role="alert" data-testid="consult-booking-error">
          {error}
        </p>
      ) : null}
    </section>
  );
}

function Publish({ onDone }: { onDone: () => void }) {
  const { t } = useI18n();
  const td = t.consult.detail;
  const start = new Date(Date.now() + 60 * 60000);
  start.setMinutes(0, 0, 0);
  const [from, setFrom] = useState(localInput(start));
  const [to, setTo] = useState(localInput(new Date(start.getTime() + 2 * 3600000)));
  const [minutes, setMinutes] = useState(30);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const publish = async () => {
    setBusy(true);
    setError(null);
    try {
      await publishAvailability(new Date(from).toISOString(), new Date(to).toISOString(), minutes);
      onDone();
    } catch (err) {
      setError(consultError(err, t));
    } finally {
      setBusy(false);
    }
  };
  return (
    <details className="cs-publish" data-testid="consult-publish">
      <summary>{td.publishTitle}</summary>
      <div className="cs-row">
        <label className="cs-field">
          <span>{td.publishFrom}</span>
          <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} data-testid="consult-publish-from" />
        </label>
        <label className="cs-field">
          <span>{td.publishTo}</span>
          <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} data-testid="consult-publish-to" />
        </label>
        <label className="cs-field cs-narrow">
          <span>{td.slotMinutes}</span>
          <select value={minutes} onChange={(e) => setMinutes(Number(e.target.value))}>
            {[15, 20, 30, 45, 60].map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="btn btn-secondary cs-align-end" disabled={busy || !from || !to} onClick={() => void publish()} data-testid="consult-publish-submit">
          {td.publish}
        </button>
      </div>
      {error ? <p className="form-error">{error}</p> : null}
    </details>
  );
}
