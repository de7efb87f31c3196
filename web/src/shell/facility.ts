import type { Facility } from "../api/session";
import type { Lang } from "../i18n";

export function facilityName(facility: Facility, lang: Lang): string {
  return (lang === "en" ? facility.name_en : facility.name_zh) || facility.name_zh || facility.name_en;
}
