import type { ReactNode } from "react";
import { ADMIN_AREA_PAGES } from "./admin/routes";
import { CONSULT_AREA_PAGES } from "./consult/routes";
import { ECG_AREA_PAGES } from "./ecg/routes";
import { IMAGING_AREA_PAGES } from "./imaging/routes";
import type { AreaKey } from "./shell/areas";
import { SystemStatusPage } from "./system/SystemStatus";

/**
 * The page of each area that has one. An area not listed here shows its "coming soon" placeholder (and its
 * home card says so); an area's own folder (src/<area>/) adds its page here when it is built.
 */
export const AREA_PAGES: Partial<Record<AreaKey, ReactNode>> = {
  systemStatus: <SystemStatusPage />,
  ...ECG_AREA_PAGES,
  ...IMAGING_AREA_PAGES,
  ...ADMIN_AREA_PAGES,
  ...CONSULT_AREA_PAGES,
};
