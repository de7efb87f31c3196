import type { Dictionary } from "../i18n";

/** The hour in Asia/Shanghai, whatever the PC's own zone. */
function shanghaiHour(now: Date): number {
  const hour = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Shanghai", hour: "2-digit", hour12: false }).format(now);
  return Number(hour) % 24;
}

export function greeting(t: Dictionary, name: string, now = new Date()): string {
  const hour = shanghaiHour(now);
  if (hour >= 5 && hour < 11) return t.home.greeting.morning(name);
  if (hour >= 11 && hour < 13) return t.home.greeting.noon(name);
  if (hour >= 13 && hour < 18) return t.home.greeting.afternoon(name);
  return t.home.greeting.evening(name);
}
