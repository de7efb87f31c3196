/**
 * Imaging critical findings (影像危急值) in real time for the clinical roles: the requesting facility's doctors
 * (who acknowledge) and the reading centre (which watches until they do). WebSocket /api/imaging/alerts/ws,
 * GET /api/imaging/alerts to start from and while the socket is down (useAlertFeed).
 */
import { createContext, useContext, useMemo, type ReactNode } from "react";
import { useUser } from "../../auth/useSession";
import { acknowledgeImagingAlert, imagingAlertsSocketUrl, listImagingAlerts, type ImagingAlert } from "./api";
import { useAlertFeed, type AlertFeed } from "./useAlertFeed";

export const IMAGING_ALERT_ROLES = ["township_doctor", "technician", "specialist"];
/** Who may acknowledge (and only for their own facility: `for_you`). */
export const IMAGING_ACK_ROLES = ["township_doctor", "specialist"];

interface ImagingAlertsValue extends AlertFeed<ImagingAlert> {
  forStudy: (study: string) => ImagingAlert | undefined;
}

const Context = createContext<ImagingAlertsValue>({
  alerts: [],
  mode: "off",
  acknowledge: async () => null,
  refresh: () => undefined,
  forStudy: () => undefined,
});

export function ImagingAlertsProvider({ children }: { children: ReactNode }) {
  const user = useUser();
  const enabled = user.roles.some((r) => IMAGING_ALERT_ROLES.includes(r));
  const feed = useAlertFeed<ImagingAlert>({
    enabled,
    socketUrl: imagingAlertsSocketUrl,
    list: listImagingAlerts,
    acknowledge: acknowledgeImagingAlert,
  });
  const value = useMemo<ImagingAlertsValue>(
    () => ({ ...feed, forStudy: (study) => feed.alerts.find((a) => a.study_instance_uid === study) }),
    [feed.alerts, feed.mode, feed.acknowledge, feed.refresh], // eslint-disable-line react-hooks/exhaustive-deps
  );
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export function useImagingAlerts(): ImagingAlertsValue {
  return useContext(Context);
}
