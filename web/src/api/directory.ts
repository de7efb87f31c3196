/**
 * The facility directory (gateway: GET /api/directory/facilities): every facility of the signed-in user's
 * region with its names, fetched once and shared by every page, so a row that carries only a facility_id
 * can show "城关镇卫生院". Forgotten when the session ends (the next user may be of another region).
 */
import { useEffect, useState } from "react";
import { apiJson, getSession, subscribe } from "./session";

export interface DirectoryFacility {
  id: string;
  parent_id: string | null;
  kind: "region" | "hospital" | "township" | "village";
  level: string | null;
  code: string;
  name_zh: string;
  name_en: string;
}

export type FacilityDirectory = ReadonlyMap<string, DirectoryFacility>;

const EMPTY: FacilityDirectory = new Map();
let cached: Promise<FacilityDirectory> | null = null;
let loaded: FacilityDirectory | null = null;

subscribe(() => {
  if (getSession().status !== "authenticated") {
    cached = null;
    loaded = null;
  }
});

/** The directory, fetched on the first call; a failed fetch is retried on the next call. */
export function loadFacilityDirectory(): Promise<FacilityDirectory> {
  if (!cached) {
    const request = apiJson<DirectoryFacility[]>("/api/directory/facilities").then(
      (items) => {
        const map: FacilityDirectory = new Map(items.map((f) => [f.id, f]));
        if (cached === request) loaded = map;
        return map;
      },
      () => {
        if (cached === request) cached = null;
        return EMPTY;
      },
    );
    cached = request;
  }
  return cached;
}

/** The directory for a component: empty until the one shared fetch has answered. */
export function useFacilityDirectory(): FacilityDirectory {
  const [directory, setDirectory] = useState<FacilityDirectory>(() => loaded ?? EMPTY);
  useEffect(() => {
    let live = true;
    loadFacilityDirectory().then((d) => {
      if (live) setDirectory(d);
    });
    return () => {
      live = false;
    };
  }, []);
  return directory;
}
