/**
 * Critical values (危急值) in real time for the clinical roles that deal with ECGs: the alerts WebSocket
 * through the gateway (token in the query string, as browsers cannot set headers on a WebSocket), with
 * GET /api/ecg/alerts to start from and as the fallback while the socket is down (polling, then reconnecting
 * with back-off). Components read the open alerts with useEcgAlerts().
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { ApiError } from "../../api/errors";
import { freshAccessToken } from "../../api/session";
import { useUser } from "../../auth/useSession";
import { acknowledgeAlert, listAlerts, type Alert } from "../api";
import { ALERT_ROLES, hasAny } from "../format";

export type FeedMode = "off" | "connecting" | "live" | "polling";

interface AlertsValue {
  /** Open (unacknowledged) alerts, newest first. */
  alerts: Alert[];
  mode: FeedMode;
  acknowledge: (id: string, note?: string) => Promise<Alert | null>;
  /** The open alert of a recording, if any. */
  forRecording: (recordingId: string) => Alert | undefined;
  refresh: () => void;
}

const AlertsContext = createContext<AlertsValue>({
  alerts: [],
  mode: "off",
  acknowledge: async () => null,
  forRecording: () => undefined,
  refresh: () => undefined,
});

const POLL_MS = 10_000;
const SAFETY_POLL_MS = 60_000;
const BACKOFF_MS = [2_000, 5_000, 10_000, 30_000];

function sortAlerts(list: Alert[]): Alert[] {
  return [...list].sort((a, b) => b.created_at.localeCompare(a.created_at));
}

export function socketUrl(token: string): string {
  const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${window.location.host}/api/ecg/alerts/ws?access_token=${encodeURIComponent(token)}`;
}

export function EcgAlertsProvider({ children }: { children: ReactNode }) {
  const user = useUser();
  const enabled = hasAny(user.roles, ALERT_ROLES);
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [mode, setMode] = useState<FeedMode>(enabled ? "connecting" : "off");
  const socketRef = useRef<WebSocket | null>(null);

  const refresh = useCallback(() => {
    if (!enabled) return;
    listAlerts()
      .then((page) => setAlerts(sortAlerts(page.items.filter((a) => a.status === "open"))))
      .catch(() => undefined); // keep what we have; the next poll tries again
  }, [enabled]);

  const apply = useCallback((kind: string, alert: Alert) => {
    setAlerts((list) => {
      const rest = list.filter((a) => a.id !== alert.id);
      if (kind === "acknowledged" || alert.status !== "open") return rest;
      return sortAlerts([alert, ...rest]);
    });
  }, []);

  // the socket, reconnecting with back-off; polling while it is down
  useEffect(() => {
    if (!enabled) return;
    let stopped = false;
    let attempt = 0;
    let reconnectTimer: ReturnType<typeof setTimeout> | null = null;
    let pollTimer: ReturnType<typeof setInterval> | null = null;

    const startPolling = () => {
      if (pollTimer === null) pollTimer = setInterval(refresh, POLL_MS);
    };
    const stopPolling = () => {
      if (pollTimer !== null) clearInterval(pollTimer);
      pollTimer = null;
    };

    const connect = async () => {
      if (stopped) return;
      setMode((m) => (m === "polling" ? m : "connecting"));
      const token = await freshAccessToken();
      if (stopped || !token) {
        if (!stopped) scheduleReconnect();
        return;
      }
      let ws: WebSocket;
      try {
        ws = new WebSocket(socketUrl(token));
      } catch {
        scheduleReconnect();
        return;
      }
      socketRef.current = ws;
      ws.onopen = () => {
        attempt = 0;
        stopPolling();
        setMode("live"); // the snapshot that follows brings what was raised while we were away
      };
      ws.onmessage = (event) => {
        if (typeof event.data !== "string") return;
        try {
          // {"type": "snapshot", "alerts": [...]} on connect, then "alert" / "escalation" / "acknowledged"
          // with one alert each, and a "heartbeat" when quiet
          const msg = JSON.parse(event.data) as { type?: string; alert?: Alert; alerts?: Alert[] };
          if (msg.type === "snapshot" && Array.isArray(msg.alerts)) {
            setAlerts(sortAlerts(msg.alerts.filter((a) => a.status === "open")));
          } else if (msg.alert) apply(msg.type ?? "alert", msg.alert);
        } catch {
          // not JSON (a keep-alive): ignore
        }
      };
      ws.onclose = () => {
        if (socketRef.current === ws) socketRef.current = null;
        if (stopped) return;
        scheduleReconnect();
      };
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

    refresh();
    void connect();
    const safety = setInterval(refresh, SAFETY_POLL_MS);
    return () => {
      stopped = true;
      clearInterval(safety);
      stopPolling();
      if (reconnectTimer !== null) clearTimeout(reconnectTimer);
      const ws = socketRef.current;
      socketRef.current = null;
      ws?.close(1000, "leaving");
    };
  }, [enabled, refresh, apply]);

  const acknowledge = useCallback(
    async (id: string, note?: string) => {
      try {
        const alert = await acknowledgeAlert(id, note);
        apply("acknowledged", alert);
        return alert;
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          // someone else acknowledged it first: it is no longer open
          setAlerts((list) => list.filter((a) => a.id !== id));
          return null;
        }
        throw err;
      }
    },
    [apply],
  );

  const value = useMemo<AlertsValue>(
    () => ({
      alerts,
      mode,
      acknowledge,
      forRecording: (recordingId) => alerts.find((a) => a.recording_id === recordingId),
      refresh,
    }),
    [alerts, mode, acknowledge, refresh],
  );
  return <AlertsContext.Provider value={value}>{children}</AlertsContext.Provider>;
}

export function useEcgAlerts(): AlertsValue {
  return useContext(AlertsContext);
}
