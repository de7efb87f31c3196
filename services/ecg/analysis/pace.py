"""Pacemaker spike detection and blanking.

A pacing spike is a deflection far narrower than any cardiac wave: it survives as a large residual after a
~12 ms median filter, in several leads at once.  Spikes are blanked (linear interpolation) before the
diagnostic filters, which would otherwise smear them into the P/QRS onsets and ring around them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from services.ecg.analysis.filters import as_2d


def detect_pacing_spikes(signal_mv: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices of pacing spikes (empty below 250 Hz, where spikes cannot be told from QRS edges)."""
    x = as_2d(signal_mv)
    if fs < 250 or x.shape[0] < 10:
        return np.zeros(0, dtype=np.int64)
    nl = x.shape[1]
    # cheap screen first: a spike has a second difference no cardiac wave reaches
    d2 = np.abs(x[2:] - 2 * x[1:-1] + x[:-2])
    if not ((d2 > 0.15).sum(axis=1) >= (max(2, nl // 4) if nl >= 3 else 1)).any():
        return np.zeros(0, dtype=np.int64)
    k = max(int(0.012 * fs) | 1, 3)
    xl = np.ascontiguousarray(x.T)
    res = np.abs(xl - ndimage.median_filter(xl, size=(1, k), mode="nearest")).T
    if nl >= 3:
        hit = (res > 0.3).sum(axis=1) >= max(2, nl // 4)
    else:
        hit = (res > 0.5).any(axis=1)
    idx = np.flatnonzero(hit)
    if len(idx) == 0:
        return idx.astype(np.int64)
    # one spike per cluster (within 10 ms), placed on the largest residual
    gap = int(0.01 * fs)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(idx) > gap) + 1])
    total = res.sum(axis=1)
    out = [int(c[np.argmax(total[c])]) for c in np.split(idx, starts[1:])]
    spikes = np.asarray(out, dtype=np.int64)
    # a real pacemaker fires at most ~every 250 ms per chamber; trains denser than 12/s are noise
    if len(spikes) > 12 * x.shape[0] / fs:
        return np.zeros(0, dtype=np.int64)
    return spikes


def blank_spikes(signal_mv: np.ndarray, fs: float, spikes: np.ndarray) -> np.ndarray:
    """Copy of the signal with each spike (-4..+16 ms: the spike and its amplifier tail) replaced by a
    straight line between its edges."""
    x = as_2d(signal_mv).copy()
    n = x.shape[0]
    a_off, b_off = int(0.004 * fs) + 1, int(0.016 * fs) + 1
    for s in np.asarray(spikes, dtype=np.int64):
        a, b = max(int(s) - a_off, 0), min(int(s) + b_off, n - 1)
        if b - a < 2:
            continue
        frac = np.linspace(0.0, 1.0, b - a + 1)[:, None]
        x[a : b + 1] = x[a] * (1 - frac) + x[b] * frac
    return x


def paced_beats(beats: np.ndarray, spikes: np.ndarray, fs: float, before_s: float = 0.15) -> np.ndarray:
    """Boolean per beat: a pacing spike precedes the beat's fiducial by at most `before_s`."""
    beats = np.asarray(beats, dtype=np.int64)
    if len(spikes) == 0 or len(beats) == 0:
        return np.zeros(len(beats), dtype=bool)
    sp = np.sort(spikes)
    j = np.searchsorted(sp, beats, side="right") - 1
    ok = j >= 0
    d = np.where(ok, beats - sp[np.clip(j, 0, len(sp) - 1)], 1 << 30)
    return ok & (d <= int(before_s * fs))
