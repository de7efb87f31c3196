/**
 * The consult area's pages and sub-routes, for App.tsx. Area page: /consults (both sides' lists).
 * Sub-routes: /consults/new (request form), /consults/:id (detail), /consults/:id/room (pre-call check and
 * the video room), /consults/:id/ecg/:rid (an attached ECG in the ECG viewer, for either side).
 */
import type { ReactNode } from "react";
import { Link, Route, useParams } from "react-router-dom";
import { useUser } from "../auth/useSession";
import { useI18n } from "../i18n";
import { areasFor, type AreaKey } from "../shell/areas";
import { Forbidden } from "../shell/AreaPage";
import { AttachmentView } from "./detail/AttachmentView";
import { DetailPage } from "./detail/DetailPage";
import { ConsultListPage } from "./list/ConsultListPage";
import { RequestPage } from "./request/RequestPage";
import { RoomPage } from "./room/RoomPage";
import "./consult.css";

export const CONSULT_AREA_PAGES: Partial<Record<AreaKey, ReactNode>> = {
  consults: <ConsultListPage />,
};

function RequireArea({ children, requester = false }: { children: ReactNode; requester?: boolean }) {
  const user = useUser();
  const ok = areasFor(user.roles).some((a) => a.key === "consults") && (!requester || user.roles.includes("township_doctor"));
  return ok ? <>{children}</> : <Forbidden />;
}

function ConsultEcgPage() {
  const { id = "", rid = "" } = useParams();
  const { t } = useI18n();
  return (
    <div className="page cs-page ecg-page-wide" data-testid="consult-ecg-page">
      <Link to={`/consults/${id}`} className="back-link">
        ← {t.consult.room.backToConsult}
      </Link>
      <h1>{t.consult.detail.openEcgTitle}</h1>
      <section className="panel">
        <AttachmentView attachment={{ kind: "ecg_recording", ref: rid, label: null }} />
      </section>
    </div>
  );
}

/** Routes under the signed-in layout (children of the Layout route in App.tsx). */
export function consultRoutes() {
  return [
    <Route
      key="consult-new"
      path="/consults/new"
      element={
        <RequireArea requester>
          <RequestPage />
        </RequireArea>
      }
    />,
    <Route
      key="consult-detail"
      path="/consults/:id"
      element={
        <RequireArea>
          <DetailPage />
        </RequireArea>
      }
    />,
    <Route
      key="consult-room"
      path="/consults/:id/room"
      element={
        <RequireArea>
          <RoomPage />
        </RequireArea>
      }
    />,
    <Route
      key="consult-ecg"
      path="/consults/:id/ecg/:rid"
      element={
        <RequireArea>
          <ConsultEcgPage />
        </RequireArea>
      }
    />,
  ];
}
