import type { ReactNode } from "react";
import { Navigate, useLocation } from "react-router-dom";
import { FullPageLoading } from "../ui/states";
import { useSession } from "./useSession";

/** Renders its children for a signed-in user; otherwise sends the browser to /login, remembering where it was. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const session = useSession();
  const location = useLocation();
  if (session.status === "restoring") return <FullPageLoading />;
  if (session.status === "anonymous") {
    // after signing out, the next person starts at their own home, not at the last page of the previous one
    const from = session.reason === "logged_out" ? undefined : location.pathname + location.search;
    return <Navigate to="/login" replace state={{ from, reason: session.reason }} />;
  }
  return <>{children}</>;
}
