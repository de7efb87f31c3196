/** The consult's chat panel: live/offline state, history with older pages, text, files and pictures. */
import { useEffect, useRef, useState } from "react";
import { useUser } from "../../auth/useSession";
import { formatTime, useI18n } from "../../i18n";
import { Icon } from "../../ui/Icon";
import { Loading } from "../../ui/states";
import { download, messageFilePath, objectUrl, type ChatMessage } from "../api";
import { consultError, ConsultErrorState, formatBytes, ProgressBar } from "../format";
import { useChat } from "./useChat";

export function ChatPanel({ consultId, compact = false, disabled = false }: { consultId: string; compact?: boolean; disabled?: boolean }) {
  const { t } = useI18n();
  const tc = t.consult.chat;
  const user = useUser();
  const chat = useChat(consultId);
  const [text, setText] = useState("");
  const [sendError, setSendError] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  const list = useRef<HTMLDivElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const count = chat.messages?.length ?? 0;

  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [count]);

  const send = async () => {
    const body = text.trim();
    if (!body) return;
    setSending(true);
    setSendError(null);
    try {
      await chat.send(body);
      setText("");
    } catch (err) {
      setSendError(`${tc.failed}：${consultError(err, t)}`);
    } finally {
      setSending(false);
    }
  };

  return (
    <section className={`panel cs-chat${compact ? " compact" : ""}`} data-testid="consult-chat" data-mode={chat.mode}>
      <header className="cs-panel-header">
        <h2>{tc.title}</h2>
        <span className={`cs-live cs-live-${chat.mode}`} data-testid="chat-mode">
          {chat.mode === "live" ? tc.live : chat.mode === "offline" ? tc.offline : chat.mode === "ended" ? tc.ended : t.common.loading}
        </span>
      </header>
      <div className="cs-chat-list" ref={list} data-testid="chat-messages">
        {chat.hasMore ? (
          <button type="button" className="btn btn-link small" onClick={chat.loadOlder}>
            {tc.older}
          </button>
        ) : null}
        {chat.error && !chat.messages ? <ConsultErrorState error={chat.error} onRetry={chat.refresh} /> : null}
        {!chat.messages && !chat.error ? <Loading /> : null}
        {chat.messages && chat.messages.length === 0 ? <p className="muted cs-chat-empty">{tc.empty}</p> : null}
        {chat.messages?.map((m) => <Bubble key={m.id} m={m} consultId={consultId} mine={m.author_id === user.id} />)}
      </div>
      {chat.uploads.map((u) => (
        <div key={u.key} className="cs-chat-upload">
          {u.error ? (
            <span className="form-error small">
              {u.name}：{consultError(u.error, t)}
            </span>
          ) : (
            <ProgressBar value={u.progress} label={tc.uploading(u.name, Math.round(u.progress * 100))} testId="chat-upload-progress" />
          )}
        </div>
      ))}
      {sendError ? <p className="form-error small">{sendError}</p> : null}
      <form
        className="cs-chat-form"
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
      >
        <input
          ref={fileInput}
          type="file"
          hidden
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f) void chat.sendFile(f);
            e.target.value = "";
          }}
          data-testid="chat-file"
        />
        <button type="button" className="btn btn-ghost btn-small" title={tc.attach} aria-label={tc.attach} disabled={disabled} onClick={() => fileInput.current?.click()}>
          <Icon name="upload" size={18} />
        </button>
        <input value={text} onChange={(e) => setText(e.target.value)} placeholder={tc.placeholder} maxLength={4000} disabled={disabled} data-testid="chat-input" />
        <button type="submit" className="btn btn-primary btn-small" disabled={disabled || sending || !text.trim()} data-testid="chat-send">
          {tc.send}
        </button>
      </form>
    </section>
  );
}

function Bubble({ m, consultId, mine }: { m: ChatMessage; consultId: string; mine: boolean }) {
  const { t, locale } = useI18n();
  const file = m.file ?? null;
  const isImage = Boolean(file?.content_type.startsWith("image/"));
  return (
    <div className={`cs-bubble${mine ? " mine" : ""}${m.kind === "system" ? " system" : ""}`} data-testid="chat-message" data-id={m.id}>
      <div className="cs-bubble-meta">
        <strong>{mine ? t.consult.chat.you : (m.author_name ?? "")}</strong> <span className="muted">{formatTime(new Date(m.created_at), locale)}</span>
      </div>
      {m.text ? <div className="cs-bubble-text">{m.text}</div> : null}
      {file ? (
        isImage ? (
          <ChatImage path={messageFilePath(consultId, m.id)} name={file.name} />
        ) : (
          <button type="button" className="btn btn-link" onClick={() => void download(messageFilePath(consultId, m.id), file.name)} data-testid="chat-file-link">
            <Icon name="clipboard" size={16} /> {file.name} <span className="muted small">({formatBytes(file.size_bytes)})</span>
          </button>
        )
      ) : null}
    </div>
  );
}

function ChatImage({ path, name }: { path: string; name: string }) {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    let made: string | null = null;
    objectUrl(path)
      .then((u) => {
        made = u;
        if (live) setUrl(u);
        else URL.revokeObjectURL(u);
      })
      .catch(() => undefined);
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [path]);
  return url ? (
    <a href={url} target="_blank" rel="noreferrer">
      <img src={url} alt={name} className="cs-chat-image" data-testid="chat-image" />
    </a>
  ) : (
    <span className="muted small">{name}</span>
  );
}
