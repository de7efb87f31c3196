/**
 * 我的值班 (a specialist's duty): who is on duty at the reading centre now, and going on / off duty. While on
 * duty, critical values of the townships the centre reads for are assigned to this reader (services/ecg/duty.py).
 */
import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { useUser } from "../../auth/useSession";
import { formatTime, useI18n } from "../../i18n";
import { ErrorState, Loading, errorMessage } from "../../ui/states";
import { dutyNow, goOnDuty, listDuty, takeOffDuty, type DutyShift } from "../api";

const HOURS = [2, 4, 8, 12, 24];

export function DutyPage() {
  const { t, locale } = useI18n();
  const td = t.ecg.duty;
  const user = useUser();
  const [now, setNow] = useState<DutyShift[] | null>(null);
  const [mine, setMine] = useState<DutyShift[]>([]);
  const [hours, setHours] = useState(8);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);

  const load = useCallback(() => {
    Promise.all([dutyNow(), listDuty(user.id)])
      .then(([current, roster]) => {
        setNow(current.items);
        setMine(roster.items.filter((s) => new Date(s.ends_at).getTime() > Date.now()));
        setError(null);
      })
      .catch((err: unknown) => setError(err));
  }, [user.id]);

  useEffect(() => {
    load();
    const timer = setInterval(load, 60_000);
    return () => clearInterval(timer);
  }, [load]);

  const act = (work: Promise<unknown>) => {
    setBusy(true);
    setActionError(null);
    work
      .then(load)
      .catch((err: unknown) => setActionError(err))
      .finally(() => setBusy(false));
  };

  const time = (iso: string) => formatTime(new Date(iso), locale, true);
  const running = now?.find((s) => s.user_id === user.id);

  return (
    <div className="page ecg-page" data-testid="ecg-duty-page">
      <header className="page-header page-header-row">
        <div>
          <h1>{td.title}</h1>
          <p className="muted">{td.summary}</p>
        </div>
        <Link to="/ecg/reading" className="btn btn-secondary">
          {t.ecg.reading.backToWorklist}
        </Link>
      </header>
      {error && !now ? (
        <ErrorState error={error} onRetry={load} />
      ) : !now ? (
        <Loading />
      ) : (
        <>
          <section className="panel duty-panel" data-testid="ecg-duty-mine" data-on-duty={running ? "true" : "false"}>
            <p className={running ? "duty-status duty-on" : "duty-status"}>
              {running ? td.youAreOn(time(running.ends_at)) : td.youAreOff}
            </p>
            {running ? (
              <button
                type="button"
                className="btn btn-secondary"
                disabled={busy}
                onClick={() => act(takeOffDuty(running.id))}
                data-testid="ecg-duty-end"
              >
                {td.end}
              </button>
            ) : (
              <form
                className="duty-form"
                onSubmit={(e) => {
                  e.preventDefault();
                  act(goOnDuty(hours));
                }}
              >
                <label>
                  {td.hours}{" "}
                  <select value={hours} onChange={(e) => setHours(Number(e.target.value))} data-testid="ecg-duty-hours">
                    {HOURS.map((h) => (
                      <option key={h} value={h}>
                        {h}
                      </option>
                    ))}
                  </select>
                </label>
                <button type="submit" className="btn btn-primary" disabled={busy} data-testid="ecg-duty-start">
                  {td.start}
                </button>
              </form>
            )}
            {actionError ? <p className="form-error">{errorMessage(actionError, t)}</p> : null}
            {mine.length > 0 ? (
              <>
                <h2>{td.upcoming}</h2>
                <ul className="duty-list">
                  {mine.map((s) => (
                    <li key={s.id}>
                      {td.from(time(s.starts_at))} · {td.until(time(s.ends_at))}
                    </li>
                  ))}
                </ul>
              </>
            ) : null}
          </section>
          <section className="panel duty-panel">
            <h2>{td.onDutyNow}</h2>
            {now.length === 0 ? (
              <p className="muted" data-testid="ecg-duty-nobody">
                {td.nobody}
              </p>
            ) : (
              <ul className="duty-list" data-testid="ecg-duty-now">
                {now.map((s) => (
                  <li key={s.id} data-testid="ecg-duty-reader" data-user-id={s.user_id}>
                    <strong>{s.display_name}</strong>
                    {s.user_id === user.id ? td.you : ""} · {td.until(time(s.ends_at))}
                  </li>
                ))}
              </ul>
            )}
          </section>
        </>
      )}
    </div>
  );
}
