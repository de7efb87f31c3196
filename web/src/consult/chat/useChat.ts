/**
 * A consult's chat: the history (GET …/messages, older pages on demand), live messages over the WebSocket
 * (…/chat, token in the query string; reconnecting with back-off, polling while it is down), sending through
 * POST (persisted before it is broadcast; the echo is de-duplicated by id) and files with upload progress.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { chatSocketPath, listMessages, sendMessage, socketUrl, uploadChatFile, type ChatMessage } from "../api";

export type ChatMode = "connecting" | "live" | "offline" | "ended";

/** Close codes the server uses when access ended (4003) or the consult ended (4001): do not reconnect. */
const FINAL_CLOSE_CODES = new Set([4001, 4003]);
const BACKOFF_MS = [1_000, 2_000, 5_000, 10_000];

function merge(list: ChatMessage[], more: ChatMessage[]): ChatMessage[] {
  const byId = new Map(list.map((m) => [m.id, m]));
  for (const m of more) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
}

/** A message out of whatever the socket sends: {"type":"message","message":{…}} or the message itself. */
function messageOf(data: unknown): ChatMessage | null {
  if (!data || typeof data !== "object") return null;
  const d = data as Record<string, unknown>;
  const inner = (d.message ?? d.item ?? d.data) as Record<string, unknown> | undefined;
  if (inner && typeof inner === "object" && typeof inner.id === "string") return inner as unknown as ChatMessage;
  if (typeof d.id === "string" && typeof d.created_at === "string") return d as unknown as ChatMessage;
  return null;
}

export interface Upload {
  key: string;
  name: string;
  progress: number;
  error?: unknown;
}

export function useChat(consultId: string) {
  const [messages, setMessages] = useState<ChatMessage[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [mode, setMode] = useState<ChatMode>("connecting");
  const [older, setOlder] = useState<string | null>(null);
  const firstPage = useRef(true);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const socket = useRef<WebSocket | null>(null);

  const refresh = useCallback(() => {
    listMessages(consultId)
      .then((page) => {
        setMessages((old) => merge(old ?? [], page.items));
        if (firstPage.current) setOlder(page.next_before);
        firstPage.current = false;
        setError(null);
      })
      .catch((err: unknown) => setError(err));
  }, [consultId]);

  useEffect(() => {
    let stopped = false;
    let attempt = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let poll: ReturnType<typeof setInterval> | null = null;
    const connect = async () => {
      if (stopped) return;
      const url = await socketUrl(chatSocketPath(consultId));
      if (stopped) return;
      if (!url) {
        retry();
        return;
      }
      const ws = new WebSocket(url);
      socket.current = ws;
      ws.onopen = () => {
        attempt = 0;
        setMode("live");
        if (poll) clearInterval(poll);
        poll = null;
        refresh(); // what was said while we were away
      };
      ws.onmessage = (event) => {
        if (typeof event.data !== "string") return;
        try {
          const m = messageOf(JSON.parse(event.data));
          if (m) setMessages((old) => merge(old ?? [], [m]));
        } catch {
          // a keep-alive
        }
      };
      ws.onclose = (event) => {
        if (socket.current === ws) socket.current = null;
        if (FINAL_CLOSE_CODES.has(event.code)) {
          setMode("ended");
          refresh();
          return;
        }
        if (!stopped) retry();
      };
    };
    const retry = () => {
      setMode("offline");
      if (!poll) poll = setInterval(refresh, 10_000);
      const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)] ?? 10_000;
      attempt += 1;
      timer = setTimeout(() => void connect(), delay);
    };
    refresh();
    void connect();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (poll) clearInterval(poll);
      const ws = socket.current;
      socket.current = null;
      ws?.close(1000, "leaving");
    };
  }, [consultId, refresh]);

  const loadOlder = useCallback(() => {
    if (!older) return;
    listMessages(consultId, older)
      .then((page) => {
        setMessages((old) => merge(old ?? [], page.items));
        setOlder(page.next_before);
      })
      .catch((err: unknown) => setError(err));
  }, [consultId, older]);

  const send = useCallback(
    async (text: string) => {
      const m = await sendMessage(consultId, text);
      setMessages((old) => merge(old ?? [], [m]));
    },
    [consultId],
  );

  const sendFile = useCallback(
    async (file: File) => {
      const key = `${Date.now()}-${Math.random()}`;
      const update = (patch: Partial<Upload>) => setUploads((u) => u.map((x) => (x.key === key ? { ...x, ...patch } : x)));
      setUploads((u) => [...u, { key, name: file.name, progress: 0 }]);
      try {
        const m = await uploadChatFile(consultId, file, (loaded, total) => update({ progress: loaded / total })).promise;
        setMessages((old) => merge(old ?? [], [m]));
        setUploads((u) => u.filter((x) => x.key !== key));
      } catch (err) {
        update({ error: err });
        setTimeout(() => setUploads((u) => u.filter((x) => x.key !== key)), 8000);
      }
    },
    [consultId],
  );

  return { messages, error, mode, hasMore: older !== null, uploads, refresh, loadOlder, send, sendFile };
}
