/** The facility tree the caller administers (GET /api/admin/facilities), with reload and an id index. */
import { useCallback, useEffect, useMemo, useState } from "react";
import { facilityIndex, flattenTree, getFacilityTree, type FacilityNode } from "./api";

export interface FacilityTreeState {
  roots: FacilityNode[] | null;
  error: unknown;
  reload: () => void;
  byId: Map<string, FacilityNode>;
  flat: { node: FacilityNode; depth: number }[];
}

export function useFacilityTree(): FacilityTreeState {
  const [roots, setRoots] = useState<FacilityNode[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);

  useEffect(() => {
    let live = true;
    getFacilityTree()
      .then((tree) => {
        if (!live) return;
        setRoots(tree);
        setError(null);
      })
      .catch((err: unknown) => {
        if (live) setError(err);
      });
    return () => {
      live = false;
    };
  }, [tick]);

  const byId = useMemo(() => facilityIndex(roots ?? []), [roots]);
  const flat = useMemo(() => flattenTree(roots ?? []), [roots]);
  return { roots, error, reload, byId, flat };
}
