import { useSyncExternalStore } from "react";
import { getSession, subscribe, type SessionState, type User } from "../api/session";

export function useSession(): SessionState {
  return useSyncExternalStore(subscribe, getSession);
}

/** The signed-in user; only for components rendered inside RequireAuth. */
export function useUser(): User {
  const session = useSession();
  if (session.status !== "authenticated") throw new Error("useUser outside an authenticated route");
  return session.user;
}
