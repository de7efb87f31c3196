import { BrowserRouter, Navigate, Route, Routes } from "react-router-dom";
import { AREA_PAGES } from "./areaPages";
import { consultRoutes } from "./consult/routes";
import { RequireAuth } from "./auth/RequireAuth";
import { ecgRoutes } from "./ecg/routes";
import { imagingPublicRoutes, imagingRoutes } from "./imaging/routes";
import { HomePage } from "./home/HomePage";
import { LoginPage } from "./login/LoginPage";
import { AREAS } from "./shell/areas";
import { AreaRoute, NotFound } from "./shell/AreaPage";
import { Layout } from "./shell/Layout";

export function App() {
  return (
    <BrowserRouter>
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        {imagingPublicRoutes()}
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
          {imagingRoutes()}
          {consultRoutes()}
          <Route path="*" element={<NotFound />} />
        </Route>
      </Routes>
    </BrowserRouter>
  );
}
