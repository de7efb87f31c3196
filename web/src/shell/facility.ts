import { useFacilityDirectory } from "../api/directory";
import { getSession, type Facility } from "../api/session";
import { useI18n, type Lang } from "../i18n";

export function facilityName(facility: Pick<Facility, "name_zh" | "name_en">, lang: Lang): string {
  return (lang === "en" ? facility.name_en : facility.name_zh) || facility.name_zh || facility.name_en;
}

/**
 * ``facilityId -> name`` in the current language: the user's own facility from the session, any other from
 * the region's facility directory (one cached fetch); a short id while it loads or for one outside it.
 */
export function useFacilityLabel(): (facilityId: string) => string {
  const { lang } = useI18n();
  const directory = useFacilityDirectory();
  return (facilityId: string) => {
    const session = getSession();
    if (session.status === "authenticated" && session.user.facility.id === facilityId) {
      return facilityName(session.user.facility, lang);
    }
    const found = directory.get(facilityId);
    return (found && facilityName(found, lang)) || facilityId.slice(0, 8);
  };
}
