/** Patient names for rows that carry only a patient_id (looked up once per id, kept for the page's life). */
import { useEffect, useState } from "react";
import { getPatient, type Patient } from "./api";

const cache = new Map<string, Promise<Patient | null>>();

function lookup(id: string): Promise<Patient | null> {
  let p = cache.get(id);
  if (!p) {
    p = getPatient(id).catch(() => {
      cache.delete(id); // not visible or a hiccup: ask again next time
      return null;
    });
    cache.set(id, p);
  }
  return p;
}

export function usePatients(ids: (string | null | undefined)[]): Record<string, Patient> {
  const key = Array.from(new Set(ids.filter((x): x is string => !!x))).sort().join(",");
  const [found, setFound] = useState<Record<string, Patient>>({});
  useEffect(() => {
    if (!key) return;
    let live = true;
    Promise.all(key.split(",").map((id) => lookup(id))).then((list) => {
      if (!live) return;
      const out: Record<string, Patient> = {};
      for (const p of list) if (p) out[p.id] = p;
      setFound(out);
    });
    return () => {
      live = false;
    };
  }, [key]);
  return found;
}

export function ageOf(birthDate: string | null | undefined, at = new Date()): number | null {
  if (!birthDate) return null;
  const b = new Date(birthDate);
  if (Number.isNaN(b.getTime())) return null;
  let age = at.getFullYear() - b.getFullYear();
  const m = at.getMonth() - b.getMonth();
  if (m < 0 || (m === 0 && at.getDate() < b.getDate())) age -= 1;
  return age;
}
