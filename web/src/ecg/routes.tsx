/**
 * The ECG area's pages and sub-routes, for App.tsx. Area pages: /ecg (township doctor: recordings),
 * /ecg/upload (technician), /ecg/reading (specialist: worklist). Sub-routes are guarded by the areas
 * whose users may open them.
 */
import type { ReactNode } from "react";
import { Route } from "react-router-dom";
import { useUser } from "../auth/useSession";
import { areasFor, type AreaKey } from "../shell/areas";
import { Forbidden } from "../shell/AreaPage";
import { DutyPage } from "./duty/DutyPage";
import { ReadingPage } from "./reading/ReadingPage";
import { WorklistPage } from "./reading/WorklistPage";
import { RecordingDetailPage } from "./recordings/RecordingDetailPage";
import { RecordingsPage } from "./recordings/RecordingsPage";
import { UploadPage } from "./upload/UploadPage";
import "./ecg.css";

export const ECG_AREA_PAGES: Partial<Record<AreaKey, ReactNode>> = {
  ecg: <RecordingsPage />,
  ecgUpload: <UploadPage area="ecgUpload" />,
  ecgReading: <WorklistPage />,
};

function RequireArea({ areas, children }: { areas: AreaKey[]; children: ReactNode }) {
  const user = useUser();
  const mine = areasFor(user.roles).map((a) => a.key);
  return areas.some((a) => mine.includes(a)) ? <>{children}</> : <Forbidden />;
}

function DetailForRole() {
  const user = useUser();
  return <RecordingDetailPage backTo={user.roles.includes("township_doctor") ? "/ecg" : "/ecg/upload"} />;
}

/** Routes under the signed-in layout (children of the Layout route in App.tsx). */
export function ecgRoutes() {
  return [
    <Route
      key="ecg-new"
      path="/ecg/new"
      element={
        <RequireArea areas={["ecg"]}>
          <UploadPage area="ecg" />
        </RequireArea>
      }
    />,
    <Route
      key="ecg-recording"
      path="/ecg/recordings/:id"
      element={
        <RequireArea areas={["ecg", "ecgUpload"]}>
          <DetailForRole />
        </RequireArea>
      }
    />,
    <Route
      key="ecg-duty"
      path="/ecg/duty"
      element={
        <RequireArea areas={["ecgReading"]}>
          <DutyPage />
        </RequireArea>
      }
    />,
    <Route
      key="ecg-reading"
      path="/ecg/reading/:id"
      element={
        <RequireArea areas={["ecgReading"]}>
          <ReadingPage />
        </RequireArea>
      }
    />,
  ];
}
