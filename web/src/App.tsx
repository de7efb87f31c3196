import type { ReactNode } from "react";
import { BrowserRouter, Navigate, Route, Routes } from "react-router-dom";
import { ADMIN_AREA_PAGES } from "./admin/routes";
import { RequireAuth } from "./auth/RequireAuth";
import { ECG_AREA_PAGES, ecgRoutes } from "./ecg/routes";
import { HomePage } from "./home/HomePage";
import { LoginPage } from "./login/LoginPage";
import { AREAS, type AreaKey } from "./shell/areas";
import { AreaRoute, NotFound } from "./shell/AreaPage";
import { Layout } from "./shell/Layout";
import { SystemStatusPage } from "./system/SystemStatus";

/**
 * The page of each area that has one. An area not listed here shows its "coming soon" placeholder;
 * an area's own folder (src/<area>/) adds its page here when it is built.
 */
const AREA_PAGES: Partial<Record<AreaKey, ReactNode>> = {
  systemStatus: <SystemStatusPage />,
  ...ECG_AREA_PAGES,
  ...ADMIN_AREA_PAGES,
};

export function App() {
  return (
    <BrowserRouter>
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route
          element={
            <RequireAuth>
              <Layout />
            </RequireAuth>
          }
        >
          <Route index element={<Navigate to="/home" replace />} />
          <Route path="home" element={<HomePage />} />
          {Object.values(AREAS).map((area) => (
            <Route
              key={area.key}
              path={area.path}
              element={<AreaRoute area={area.key}>{AREA_PAGES[area.key]}</AreaRoute>}
            />
          ))}
          {ecgRoutes()}
          <Route path="*" element={<NotFound />} />
        </Route>
      </Routes>
    </BrowserRouter>
  );
}
