/** Imaging critical-finding alerts (影像危急值; services/imaging/reading_alerts.py) through the gateway. */
import { apiJson } from "../../api/session";
import type { ReadingPriority } from "../reading/api";

export interface ImagingAlert {
  id: string;
  facility_id: string; // the requesting facility, which must acknowledge
  study_instance_uid: string;
  report_id: string;
  reading_facility_id: string;
  reader_name: string;
  modality: string;
  priority: ReadingPriority;
  note: string;
  signed: boolean;
  message_zh: string;
  message_en: string;
  status: "open" | "acknowledged";
  escalation_level: number;
  escalated_at: string | null;
  acknowledged_at: string | null;
  acknowledged_name: string | null;
  created_at: string;
  /** for the receiver's own facility (per viewer) */
  for_you?: boolean;
}

const BASE = "/api/imaging/alerts";

export function listImagingAlerts() {
  return apiJson<{ items: ImagingAlert[] }>(BASE);
}

export function acknowledgeImagingAlert(alertId: string, note?: string) {
  return apiJson<ImagingAlert>(`${BASE}/${encodeURIComponent(alertId)}/acknowledge`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(note ? { note } : {}),
  });
}

export function imagingAlertsSocketUrl(token: string): string {
  const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${window.location.host}${BASE}/ws?access_token=${encodeURIComponent(token)}`;
}
