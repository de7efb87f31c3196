"""Beat-by-beat scoring (bxb-like): one-to-one matching of detections to reference beats within a window."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Score:
    n_ref: int
    tp: int
    fn: int
    fp: int

    @property
    def se(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def ppv(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else float("nan")

    def __add__(self, other: Score) -> Score:
        return Score(self.n_ref + other.n_ref, self.tp + other.tp, self.fn + other.fn, self.fp + other.fp)


def match(ref: np.ndarray, det: np.ndarray, tol: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy nearest matching in time order. Returns (matched ref mask, matched det mask)."""
    ref = np.sort(np.asarray(ref, dtype=np.int64))
    det = np.sort(np.asarray(det, dtype=np.int64))
    ref_ok = np.zeros(len(ref), dtype=bool)
    det_ok = np.zeros(len(det), dtype=bool)
    if len(ref) == 0 or len(det) == 0:
        return ref_ok, det_ok
    # candidate pairs sorted by distance: globally closest first (optimal enough for sparse beats)
    j = np.searchsorted(det, ref)
    pairs: list[tuple[int, int, int]] = []
    for i, jj in enumerate(j):
        for k in (jj - 1, jj, jj + 1):
            if 0 <= k < len(det):
                d = abs(int(det[k]) - int(ref[i]))
                if d <= tol:
                    pairs.append((d, i, k))
    pairs.sort()
    for _d, i, k in pairs:
        if not ref_ok[i] and not det_ok[k]:
            ref_ok[i] = True
            det_ok[k] = True
    return ref_ok, det_ok


def score(
    ref: np.ndarray,
    det: np.ndarray,
    fs: float,
    window_ms: float = 150.0,
    start: int = 0,
    stop: int | None = None,
    dont_care: np.ndarray | None = None,
) -> tuple[Score, np.ndarray, np.ndarray]:
    """Score detections against reference beats inside [start, stop). Returns score, FN samples, FP samples."""
    tol = round(window_ms / 1000.0 * fs)
    stop = stop if stop is not None else 1 << 62
    ref = np.asarray(ref, dtype=np.int64)
    det = np.asarray(det, dtype=np.int64)
    ref = ref[(ref >= start) & (ref < stop)]
    det = det[(det >= start - tol) & (det < stop + tol)]
    r_ok, d_ok = match(ref, det, tol)
    fp_mask = ~d_ok
    # detections just outside the scored span that match nothing are not counted
    fp_mask &= (det >= start) & (det < stop)
    if dont_care is not None and len(dont_care):
        dc = np.sort(np.asarray(dont_care, dtype=np.int64))
        idx = np.clip(np.searchsorted(dc, det), 1, len(dc) - 1) if len(dc) > 1 else np.zeros(len(det), dtype=int)
        near = np.minimum(np.abs(det - dc[idx]), np.abs(det - dc[np.maximum(idx - 1, 0)])) <= tol
        fp_mask &= ~near
    s = Score(len(ref), int(r_ok.sum()), int((~r_ok).sum()), int(fp_mask.sum()))
    return s, ref[~r_ok], det[fp_mask]
