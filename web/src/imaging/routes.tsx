/**
 * The imaging area's pages and sub-routes, for App.tsx. Area pages: /imaging (township doctor: studies),
 * /imaging/upload (technician), /imaging/worklist (specialist: the reading worklist; ?tab=search searches
 * every study the centre may see). Sub-routes: /imaging/new (the doctor's upload), /imaging/studies/:study (viewer).
 * Public (no sign-in, outside the layout): /imaging/shared#token=... (a share link, read-only).
 */
import type { ReactNode } from "react";
import { Route } from "react-router-dom";
import { useUser } from "../auth/useSession";
import { areasFor, type AreaKey } from "../shell/areas";
import { Forbidden } from "../shell/AreaPage";
import { WorklistPage } from "./reading/WorklistPage";
import { StudyListPage } from "./studies/StudyListPage";
import { UploadPage } from "./upload/UploadPage";
import { SharedViewerPage } from "./shared/SharedViewerPage";
import { ViewerPage } from "./viewer/ViewerPage";
import "./imaging.css";

export const IMAGING_AREA_PAGES: Partial<Record<AreaKey, ReactNode>> = {
  imaging: <StudyListPage area="imaging" />,
  imagingUpload: <UploadPage area="imagingUpload" />,
  readingWorklist: <WorklistPage />,
};

function RequireArea({ areas, children }: { areas: AreaKey[]; children: ReactNode }) {
  const user = useUser();
  const mine = areasFor(user.roles).map((a) => a.key);
  return areas.some((a) => mine.includes(a)) ? <>{children}</> : <Forbidden />;
}

/** Routes without sign-in (siblings of /login in App.tsx): a share link's page (the link services/imaging/sharing.py
 * share_link hands out). */
export function imagingPublicRoutes() {
  return [<Route key="imaging-shared" path="/imaging/shared" element={<SharedViewerPage />} />];
}

/** Routes under the signed-in layout (children of the Layout route in App.tsx). */
export function imagingRoutes() {
  return [
    <Route
      key="imaging-new"
      path="/imaging/new"
      element={
        <RequireArea areas={["imaging"]}>
          <UploadPage area="imaging" />
        </RequireArea>
      }
    />,
    <Route
      key="imaging-study"
      path="/imaging/studies/:study"
      element={
        <RequireArea areas={["imaging", "readingWorklist", "imagingUpload"]}>
          <ViewerPage />
        </RequireArea>
      }
    />,
  ];
}
