/**
 * Share links of a study, under the viewer (owner facility or its reading centre: township doctor,
 * technician, specialist): create one with an expiry (1, 7 or 30 days) and a note, copy the link (shown
 * once: the archive keeps only the token's hash), see each link's status and use, revoke.
 */
import { useEffect, useState } from "react";
import { useUser } from "../../auth/useSession";
import { formatTime, useI18n } from "../../i18n";
import { errorMessage } from "../../ui/states";
import { absoluteLink, createShare, listShares, revokeShare, type Share } from "./api";

const SHARE_ROLES = ["township_doctor", "technician", "specialist"];
const DAYS = [1, 7, 30];

export function SharePanel({ study }: { study: string }) {
  const { t, locale } = useI18n();
  const ts = t.imaging.shared;
  const user = useUser();
  const allowed = user.roles.some((r) => SHARE_ROLES.includes(r));
  const [shares, setShares] = useState<Share[] | null>(null);
  const [days, setDays] = useState(7);
  const [note, setNote] = useState("");
  const [created, setCreated] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    if (!allowed) return;
    const controller = new AbortController();
    listShares(study, controller.signal)
      .then((page) => setShares(page.items))
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(err);
      });
    return () => controller.abort();
  }, [study, allowed, reload]);

  if (!allowed) return null;

  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
      setReload((n) => n + 1);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="panel imaging-share" data-testid="imaging-share-panel">
      <h2>{ts.panelTitle}</h2>
      <p className="muted small">{ts.panelHint}</p>
      <form
        className="imaging-share-form"
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const share = await createShare(study, new Date(Date.now() + days * 86_400_000), note.trim());
            setCreated(absoluteLink(share.link));
            setCopied(false);
            setNote("");
          });
        }}
      >
        <label className="field">
          <span>{ts.validFor}</span>
          <select value={days} onChange={(e) => setDays(Number(e.target.value))} data-testid="imaging-share-days">
            {DAYS.map((d) => (
              <option key={d} value={d}>
                {ts.days(d)}
              </option>
            ))}
          </select>
        </label>
        <label className="field imaging-share-note">
          <span>{ts.note}</span>
          <input value={note} maxLength={500} onChange={(e) => setNote(e.target.value)} placeholder={ts.notePlaceholder} data-testid="imaging-share-note" />
        </label>
        <button type="submit" className="btn btn-primary" disabled={busy} data-testid="imaging-share-create">
          {ts.create}
        </button>
      </form>
      {created ? (
        <div className="imaging-share-new" data-testid="imaging-share-new">
          <input readOnly value={created} onFocus={(e) => e.target.select()} data-testid="imaging-share-link" aria-label={ts.link} />
          <button
            type="button"
            className="btn btn-secondary btn-small"
            onClick={() => {
              void navigator.clipboard?.writeText(created).then(() => setCopied(true), () => undefined);
            }}
          >
            {copied ? ts.copied : ts.copy}
          </button>
          <span className="muted small">{ts.shownOnce}</span>
        </div>
      ) : null}
      {error ? (
        <p className="state-error" role="alert">
          {errorMessage(error, t)}
        </p>
      ) : null}
      {shares && shares.length > 0 ? (
        <table className="imaging-table imaging-share-list" data-testid="imaging-share-list">
          <thead>
            <tr>
              <th>{ts.created}</th>
              <th>{ts.expiresAt}</th>
              <th>{ts.note}</th>
              <th>{ts.status}</th>
              <th>{ts.accesses}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {shares.map((s) => (
              <tr key={s.id} data-testid="imaging-share-row" data-share={s.id} data-status={s.status}>
                <td>{formatTime(new Date(s.created_at), locale, true)}</td>
                <td>{formatTime(new Date(s.expires_at), locale, true)}</td>
                <td>{s.note}</td>
                <td className={`imaging-share-status status-${s.status}`}>{ts.statuses[s.status]}</td>
                <td>{s.access_count}</td>
                <td>
                  {s.status === "active" ? (
                    <button
                      type="button"
                      className="btn btn-ghost btn-small"
                      disabled={busy}
                      data-testid="imaging-share-revoke"
                      onClick={() => void run(async () => void (await revokeShare(study, s.id)))}
                    >
                      {ts.revoke}
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
