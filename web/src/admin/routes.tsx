/** The admin areas' pages, for App.tsx's AREA_PAGES (routes are the areas' own: src/shell/areas.ts). */
import type { ReactNode } from "react";
import type { AreaKey } from "../shell/areas";
import { AuditPage } from "./audit/AuditPage";
import { FacilitiesPage, FacilityUsersPage, UsersPage } from "./pages";
import "./admin.css";

export const ADMIN_AREA_PAGES: Partial<Record<AreaKey, ReactNode>> = {
  facilities: <FacilitiesPage />,
  users: <UsersPage />,
  facilityUsers: <FacilityUsersPage />,
  audit: <AuditPage />,
};
