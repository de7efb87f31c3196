/**
 * The work areas of the app and which role uses which. Each area has one route; an area's page is a
 * placeholder ("coming soon") until its own folder under src/ provides the real one (see App.tsx).
 */
import type { Role } from "../api/session";
import type { Dictionary } from "../i18n";
import type { IconName } from "../ui/Icon";

export type AreaKey = keyof Dictionary["areas"];

export interface Area {
  key: AreaKey;
  path: string;
  icon: IconName;
  /** Pages outside ``path`` that belong to this area for users who have no area owning them by path. */
  also?: string[];
}

// Routes avoid the gateway's API prefixes (/auth, /api, /dicom-web, /wado, /iiif, /fhir, /admin, /audit,
// /analytics) so that reloading a page never lands on an API route.
export const AREAS: Record<AreaKey, Area> = {
  patients: { key: "patients", path: "/patients", icon: "patient" },
  imaging: { key: "imaging", path: "/imaging", icon: "imaging" },
  ecg: { key: "ecg", path: "/ecg", icon: "ecg" },
  pathology: { key: "pathology", path: "/pathology", icon: "microscope" },
  consults: { key: "consults", path: "/consults", icon: "video" },
  imagingUpload: { key: "imagingUpload", path: "/imaging/upload", icon: "upload", also: ["/imaging/studies"] },
  ecgUpload: { key: "ecgUpload", path: "/ecg/upload", icon: "upload", also: ["/ecg/recordings"] },
  pathologyUpload: { key: "pathologyUpload", path: "/pathology/upload", icon: "upload" },
  readingWorklist: { key: "readingWorklist", path: "/imaging/worklist", icon: "worklist", also: ["/imaging/studies"] },
  ecgReading: { key: "ecgReading", path: "/ecg/reading", icon: "ecg" },
  pathologyReading: { key: "pathologyReading", path: "/pathology/reading", icon: "microscope" },
  followups: { key: "followups", path: "/followups", icon: "clipboard" },
  facilityUsers: { key: "facilityUsers", path: "/manage/facility-users", icon: "users" },
  audit: { key: "audit", path: "/manage/audit", icon: "shield" },
  dashboard: { key: "dashboard", path: "/dashboard", icon: "chart" },
  facilities: { key: "facilities", path: "/manage/facilities", icon: "building" },
  users: { key: "users", path: "/manage/users", icon: "users" },
  systemStatus: { key: "systemStatus", path: "/manage/system", icon: "server" },
};

export const ROLE_AREAS: Record<Role, AreaKey[]> = {
  township_doctor: ["patients", "imaging", "ecg", "pathology", "consults"],
  technician: ["imagingUpload", "ecgUpload", "pathologyUpload"],
  specialist: ["readingWorklist", "ecgReading", "pathologyReading", "consults"],
  public_health: ["followups", "patients"],
  facility_admin: ["facilityUsers", "audit"],
  bureau_analyst: ["dashboard"],
  platform_admin: ["facilities", "users", "audit", "systemStatus"],
};

/** The areas a user with these roles uses, in role order, each once. Unknown roles add nothing. */
export function areasFor(roles: readonly string[]): Area[] {
  const keys: AreaKey[] = [];
  for (const role of roles) {
    for (const key of ROLE_AREAS[role as Role] ?? []) if (!keys.includes(key)) keys.push(key);
  }
  return keys.map((key) => AREAS[key]);
}

/**
 * The area a path belongs to among ``areas``: the one whose path is the longest prefix of it (whole
 * segments), so /ecg/new and /ecg/recordings/:id keep "ecg" highlighted while /ecg/upload is its own
 * area's; failing that, an area that claims the path through ``also`` (a technician's recording page
 * under "ECG upload"). Null when no area owns the path (home, unknown pages).
 */
export function activeArea(pathname: string, areas: readonly Area[]): Area | null {
  const path = pathname.length > 1 ? pathname.replace(/\/+$/, "") : pathname;
  const under = (prefix: string) => path === prefix || path.startsWith(`${prefix}/`);
  const longest = (prefixesOf: (area: Area) => readonly string[]): Area | null => {
    let best: Area | null = null;
    let bestLength = -1;
    for (const area of areas) {
      for (const prefix of prefixesOf(area)) {
        if (under(prefix) && prefix.length > bestLength) {
          best = area;
          bestLength = prefix.length;
        }
      }
    }
    return best;
  };
  return longest((area) => [area.path]) ?? longest((area) => area.also ?? []);
}
