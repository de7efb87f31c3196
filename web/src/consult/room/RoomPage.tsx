/**
 * /consults/:id/room — the pre-call check first, then the room of the consult's running session (started
 * here when there is none yet: accepted/scheduled → in_session).
 */
import { useCallback, useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useI18n } from "../../i18n";
import { Loading } from "../../ui/states";
import { ApiError } from "../../api/errors";
import { getConsult, startSession, type Consult } from "../api";
import { PreCall, type PreCallResult } from "./PreCall";
import { Room } from "./Room";
import { consultError, ConsultErrorState } from "../format";

export function RoomPage() {
  const { id = "" } = useParams();
  const { t } = useI18n();
  const tp = t.consult.precall;
  const [consult, setConsult] = useState<Consult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [entered, setEntered] = useState<(PreCallResult & { sessionId: string }) | null>(null);
  const [busy, setBusy] = useState(false);
  const [enterError, setEnterError] = useState<string | null>(null);

  const load = useCallback(() => {
    getConsult(id)
      .then(setConsult)
      .catch((err: unknown) => setError(err));
  }, [id]);
  useEffect(load, [load]);

  const enter = async (r: PreCallResult) => {
    if (!consult) return;
    setBusy(true);
    setEnterError(null);
    try {
      const fresh = await getConsult(consult.id);
      setConsult(fresh);
      let sid = fresh.active_session_id;
      if (!sid) {
        try {
          sid = (await startSession(fresh.id)).session_id;
        } catch (err) {
          // someone else started it meanwhile: use theirs
          if (!(err instanceof ApiError && err.status === 409)) throw err;
          sid = (await getConsult(fresh.id)).active_session_id;
          if (!sid) throw err;
        }
      }
      setEntered({ ...r, sessionId: sid });
    } catch (err) {
      r.stream?.getTracks().forEach((tr) => tr.stop());
      setEnterError(consultError(err, t));
    } finally {
      setBusy(false);
    }
  };

  if (error) return <ConsultErrorState error={error} onRetry={load} />;
  if (!consult) return <Loading />;

  return (
    <div className="page cs-page cs-room-page" data-testid="consult-room-page">
      <Link to={`/consults/${consult.id}`} className="back-link">
        ← {t.consult.room.backToConsult}
      </Link>
      <header className="page-header">
        <h1>
          {t.consult.room.title} · {consult.patient_name}
        </h1>
      </header>
      {entered ? (
        <Room
          consult={consult}
          sessionId={entered.sessionId}
          stream={entered.stream}
          iceServers={entered.iceServers}
          onExit={() => {
            entered.stream?.getTracks().forEach((tr) => tr.stop());
            setEntered(null);
            load();
          }}
        />
      ) : (
        <PreCall onEnter={(r) => void enter(r)}>
          {busy ? <span className="muted">{t.common.loading}</span> : null}
          {enterError ? (
            <span className="form-error small" data-testid="precall-enter-error">
              {enterError}
            </span>
          ) : null}
          {!busy && !enterError ? <span className="muted small">{consult.status === "in_session" ? "" : tp.noSession}</span> : null}
        </PreCall>
      )}
    </div>
  );
}
