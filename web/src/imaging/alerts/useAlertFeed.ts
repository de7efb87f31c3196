/**
 * A live feed of alerts from a service's common/alert_feed.py WebSocket: the socket through the gateway (token
 * in the query string, as browsers cannot set headers on a WebSocket) with the service's list endpoint to
 * start from and as the fallback while the socket is down (polling, then reconnecting with back-off).
 * Messages: `snapshot` (all open alerts), then `alert` / `escalation` / `acknowledged` with one alert each, and
 * `heartbeat`. The same protocol and behaviour as the ECG critical values (ecg/alerts/AlertsProvider.tsx),
 * written without ECG types so any service's feed can use it.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "../../api/errors";
import { freshAccessToken } from "../../api/session";

export type FeedMode = "off" | "connecting" | "live" | "polling";

export interface FeedAlert {
  id: string;
  status: string;
  created_at: string;
}

const POLL_MS = 10_000;
const SAFETY_POLL_MS = 60_000;
const BACKOFF_MS = [2_000, 5_000, 10_000, 30_000];

function sortAlerts<T extends FeedAlert>(list: T[]): T[] {
  return [...list].sort((a, b) => b.created_at.localeCompare(a.created_at));
}

export interface AlertFeed<T> {
  /** open alerts, newest first */
  alerts: T[];
  mode: FeedMode;
  acknowledge: (id: string, note?: string) => Promise<T | null>;
  refresh: () => void;
}

export function useAlertFeed<T extends FeedAlert>(opts: {
  enabled: boolean;
  socketUrl: (token: string) => string;
  list: () => Promise<{ items: T[] }>;
  acknowledge: (id: string, note?: string) => Promise<T>;
}): AlertFeed<T> {
  const { enabled } = opts;
  const ref = useRef(opts);
  ref.current = opts;
  const [alerts, setAlerts] = useState<T[]>([]);
  const [mode, setMode] = useState<FeedMode>(enabled ? "connecting" : "off");

  const refresh = useCallback(() => {
    if (!enabled) return;
    ref.current
      .list()
      .then((page) => setAlerts(sortAlerts(page.items.filter((a) => a.status === "open"))))
      .catch(() => undefined); // keep what we have; the next poll tries again
  }, [enabled]);

  const apply = useCallback((kind: string, alert: T) => {
    setAlerts((list) => {
      const rest = list.filter((a) => a.id !== alert.id);
      if (kind === "acknowledged" || alert.status !== "open") return rest;
      return sortAlerts([alert, ...rest]);
    });
  }, []);

  useEffect(() => {
    if (!enabled) return;
    let stopped = false;
    let attempt = 0;
    let socket: WebSocket | null = null;
    let reconnectTimer: ReturnType<typeof setTimeout> | null = null;
    let pollTimer: ReturnType<typeof setInterval> | null = null;

    const startPolling = () => {
      if (pollTimer === null) pollTimer = setInterval(refresh, POLL_MS);
    };
    const stopPolling = () => {
      if (pollTimer !== null) clearInterval(pollTimer);
      pollTimer = null;
    };
    const scheduleReconnect = () => {
      setMode("polling");
      startPolling();
      refresh();
      const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)] ?? 30_000;
      attempt += 1;
      if (reconnectTimer !== null) clearTimeout(reconnectTimer);
      reconnectTimer = setTimeout(() => void connect(), delay);
    };
    const connect = async () => {
      if (stopped) return;
      setMode((m) => (m === "polling" ? m : "connecting"));
      const token = await freshAccessToken();
      if (stopped) return;
      if (!token) {
        scheduleReconnect();
        return;
      }
      let ws: WebSocket;
      try {
        ws = new WebSocket(ref.current.socketUrl(token));
      } catch {
        scheduleReconnect();
        return;
      }
      socket = ws;
      ws.onopen = () => {
        attempt = 0;
        stopPolling();
        setMode("live");
      };
      ws.onmessage = (event) => {
        if (typeof event.data !== "string") return;
        try {
          const msg = JSON.parse(event.data) as { type?: string; alert?: T; alerts?: T[] };
          if (msg.type === "snapshot" && Array.isArray(msg.alerts)) setAlerts(sortAlerts(msg.alerts.filter((a) => a.status === "open")));
          else if (msg.alert) apply(msg.type ?? "alert", msg.alert);
        } catch {
          // not JSON: ignore
        }
      };
      ws.onclose = () => {
        if (socket === ws) socket = null;
        if (!stopped) scheduleReconnect();
      };
    };

    refresh();
    void connect();
    const safety = setInterval(refresh, SAFETY_POLL_MS);
    return () => {
      stopped = true;
      clearInterval(safety);
      stopPolling();
      if (reconnectTimer !== null) clearTimeout(reconnectTimer);
      socket?.close(1000, "leaving");
      socket = null;
    };
  }, [enabled, refresh, apply]);

  const acknowledge = useCallback(
    async (id: string, note?: string) => {
      try {
        const alert = await ref.current.acknowledge(id, note);
        apply("acknowledged", alert);
        return alert;
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          // someone else acknowledged it first
          setAlerts((list) => list.filter((a) => a.id !== id));
          return null;
        }
        throw err;
      }
    },
    [apply],
  );

  return { alerts, mode, acknowledge, refresh };
}
