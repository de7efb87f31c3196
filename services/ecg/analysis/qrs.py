"""Multi-lead QRS detection.

Design (after Hamilton & Tompkins 1986 / Pan & Tompkins 1985, with multi-lead fusion):

1. Leads above 260 Hz are resampled to 250 Hz (polyphase); slower ones (128 Hz Holters) run natively.  Every
   constant is in seconds, so the same detector serves 128 Hz to 1 kHz and beyond.
2. Per lead: 5-25 Hz Butterworth band-pass (its group delay removed), absolute first difference (not squared:
   keeps the dynamic range between wide ectopic beats and sharp normal beats small), 100 ms moving average.
3. Each lead's envelope is normalised by a running robust level of its own QRS peaks (median of 2-s block
   maxima over ~18 s) and weighted per block by how "peaky" it is (max / median: ~10-40 on clean ECG, 3-4 under
   muscle or motion noise), then the leads are averaged: noise confined to one lead is voted down where it
   occurs, a disconnected lead contributes nothing.  Blocks where no lead is peaky are damped as a whole.
4. Peaks closer than 200 ms to a larger peak are dropped (refractory).  Remaining peaks are classified with
   Hamilton's adaptive threshold DT = noise + 0.3125 (QRS - noise) on medians of the last 8 QRS and noise
   peaks, a T-wave test (a peak within 360 ms of the previous beat whose slope is under half the reference
   slope - three quarters when it is very premature - is a T wave) and search-back: when no beat arrives for
   1.5 median RR, the largest noise peak in the gap above half the threshold is taken as a beat.
5. The fiducial is the centroid of the fused slope energy around the envelope peak, mapped back to the
   caller's sampling rate.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy.signal import butter, find_peaks, firwin, group_delay, resample_poly, sosfilt, tf2sos

from services.ecg.analysis.filters import as_2d

WORK_FS = 250.0
MIN_SECONDS = 1.0
_BLOCK_S = 2.0
GAIN_FLOOR = 0.3


def _validate(signal_mv: np.ndarray, fs: float) -> np.ndarray:
    if not np.isfinite(fs) or fs < 50 or fs > 20000:
        raise ValueError(f"sampling rate {fs} Hz is outside 50..20000 Hz")
    x = as_2d(signal_mv)
    if x.shape[0] < int(MIN_SECONDS * fs):
        raise ValueError(f"signal too short for QRS detection: {x.shape[0]} samples at {fs} Hz (< {MIN_SECONDS} s)")
    if x.shape[1] == 0:
        raise ValueError("signal has no leads")
    return x if np.isfinite(x.sum()) else np.nan_to_num(x)


def _block_stats(a: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block of a leads x samples array (the tail is its own block): max and a sub-sampled median,
    each blocks x leads."""
    n = a.shape[1]
    nb = n // block
    used = nb * block
    full = a[:, :used].reshape(a.shape[0], nb, block)
    mx = full.max(axis=2).T
    md = np.median(full[:, :, ::5], axis=2).T
    if used < n:
        tail = a[:, used:]
        mx = np.vstack([mx, tail.max(axis=1)])
        md = np.vstack([md, np.median(tail[:, ::5], axis=1)])
    return mx, md


def _blockwise_dot(a: np.ndarray, c: np.ndarray, block: int) -> np.ndarray:
    """sum over leads of a[k, t] * c[block(t), k] without materialising per-sample weights."""
    nl, n = a.shape
    nb = n // block
    used = nb * block
    out = np.zeros(n, dtype=np.float64)
    for k in range(nl):
        if nb:
            out[:used] += (a[k, :used].reshape(nb, block) * c[:nb, k, None]).reshape(-1)
        if used < n:
            out[used:] += a[k, used:] * c[-1, k]
    return out


class _SlopeProbe:
    """Fused |slope| (leads x samples |first difference|, block weights `c`), evaluated only where asked."""

    def __init__(self, d: np.ndarray, c: np.ndarray, block: int) -> None:
        self.d, self.c, self.block = d, c, block

    def windows(self, idx: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
        """(window sample indices, fused slope in those windows), one row per index."""
        n = self.d.shape[1]
        win = np.clip(idx[:, None] + np.arange(-half, half + 1)[None, :], 0, n - 1)
        blk = np.minimum(win // self.block, self.c.shape[0] - 1)
        acc = np.zeros(win.shape, dtype=np.float64)
        for k in range(self.d.shape[0]):
            acc += self.d[k][win] * self.c[blk, k]
        return win, acc

    def at(self, idx: np.ndarray, fs: float) -> np.ndarray:
        """Largest fused |slope| within +-50 ms of each index."""
        return self.windows(idx, int(0.05 * fs))[1].max(axis=1)


@lru_cache(maxsize=16)
def _detection_filter(fs: float) -> tuple[np.ndarray, int]:
    """5-25 Hz Butterworth band-pass (single pass) and its group delay in samples at 12 Hz."""
    b, a = butter(2, [5.0 / (fs / 2), 25.0 / (fs / 2)], btype="bandpass")
    _w, gd = group_delay((b, a), w=[12.0], fs=fs)
    return tf2sos(b, a).astype(np.float32), round(float(gd[0]))


@lru_cache(maxsize=32)
def _resample_taps(up: int, down: int) -> np.ndarray:
    """Short anti-alias FIR for detection-grade resampling (the 5-25 Hz band-pass follows)."""
    m = max(up, down)
    return (firwin(2 * 3 * m + 1, 1.0 / m, window=("kaiser", 5.0)) * up).astype(np.float32)


def work_rate(fs: float) -> float:
    """Detection runs at the native rate up to 260 Hz and at 250 Hz above."""
    return fs if fs <= 260 else WORK_FS


def resample_for_detection(x: np.ndarray, fs: float) -> np.ndarray:
    if work_rate(fs) == fs:
        return x
    frac = Fraction(WORK_FS / fs).limit_denominator(1000)
    up, down = frac.numerator, frac.denominator
    return resample_poly(np.ascontiguousarray(x.T), up, down, axis=1, window=_resample_taps(up, down)).T


def envelopes(
    x250: np.ndarray, fs: float = WORK_FS, weights: np.ndarray | None = None
) -> tuple[np.ndarray, _SlopeProbe]:
    """Fused detection envelope and the fused slope probe (leads weighted per 2-s block)."""
    xl = np.ascontiguousarray(x250.T)  # leads x samples: every filter runs along contiguous memory
    sos, delay = _detection_filter(fs)
    bp = sosfilt(sos, xl, axis=1)
    if delay:  # undo the filter's group delay so that envelope peaks sit on the QRS
        bp = np.concatenate([bp[:, delay:], np.zeros((bp.shape[0], delay), dtype=bp.dtype)], axis=1)
    d = np.abs(np.diff(bp, axis=1, prepend=bp[:, :1]))
    env = ndimage.uniform_filter1d(d, size=int(0.1 * fs), axis=1, mode="nearest")
    block = int(_BLOCK_S * fs)
    bmax, bmed = _block_stats(env, block)
    nb = bmax.shape[0]
    # running robust QRS level per lead: median of block maxima over ~18 s
    # ("mirror" at the edges: "nearest" would let a QRS-free last block outvote its neighbours), floored at a
    # quarter of the lead's typical level so that stretches without any QRS (asystole, slow rates) are not
    # blown up into detections
    lvl = ndimage.median_filter(bmax, size=(min(9, nb) | 1, 1), mode="mirror") if nb > 1 else bmax
    lvl = np.maximum(lvl, np.maximum(0.25 * np.median(bmax, axis=0), 1e-9))
    # peakiness per 2-s block (max / median of the envelope): ~8-40 on clean ECG, ~3-4 under EMG or motion
    # noise.  Each lead is weighted per block, so noise confined to one lead is voted down where it occurs.
    ratio = bmax / np.maximum(bmed, 1e-12)
    wb = np.clip((ratio - 3.0) / 6.0, 0.02, 1.0) ** 2
    if nb >= 3:
        wb = ndimage.median_filter(wb, size=(3, 1), mode="nearest")
    if weights is not None:
        wb = wb * np.asarray(weights, dtype=np.float64)[None, :]
    wb = wb / np.maximum(wb.sum(axis=1, keepdims=True), 1e-12)
    # blocks where even the best-weighted leads are not peaky (muscle noise, motion) are damped as a whole:
    # their peaks must then stand out against the QRS level learnt in clean blocks to count as beats
    fused_ratio = (wb * ratio).sum(axis=1)
    gain = np.clip((fused_ratio - 2.5) / 3.5, GAIN_FLOOR, 1.0)
    c = wb / lvl * gain[:, None]
    return _blockwise_dot(env, c, block), _SlopeProbe(d, c, block)


class _Buf:
    """Last-8 buffer with its median kept up to date (a sorted copy updated by bisection)."""

    __slots__ = ("items", "med", "pos", "srt")

    def __init__(self, value: float) -> None:
        self.items = [value] * 8
        self.srt = [value] * 8
        self.pos = 0
        self.med = value

    def push(self, v: float) -> None:
        srt = self.srt
        del srt[bisect_left(srt, self.items[self.pos])]
        insort(srt, v)
        self.items[self.pos] = v
        self.pos = (self.pos + 1) & 7
        self.med = (srt[3] + srt[4]) / 2.0


def _classify_peaks(fused: np.ndarray, slope: _SlopeProbe, fs: float) -> list[int]:
    """Hamilton-style adaptive thresholding with T-wave rejection and search-back. Returns envelope peaks."""
    refr = int(0.2 * fs)
    twin = int(0.36 * fs)
    cand, props = find_peaks(fused, distance=refr, height=0.06)
    if len(cand) == 0:
        return []
    hts = props["peak_heights"]
    heights = hts.tolist()
    smax = slope.at(cand, fs).tolist()
    first = cand < int(10 * fs)
    qrs_lvl = float(np.percentile(hts[first] if first.any() else hts, 90))
    cl = cand.tolist()
    beats: list[int] = []
    sbuf = _Buf(0.0)
    for warm in (True, False):  # the first pass warms the buffers up on the first 10 s
        qbuf, nbuf, rrbuf = _Buf(qrs_lvl), _Buf(0.1 * qrs_lvl), _Buf(0.8 * fs)
        thr = nbuf.med + 0.3125 * (qbuf.med - nbuf.med)
        beats = []
        last_slope = 0.0
        noise_idx: list[int] = []
        stop = int(np.searchsorted(cand, int(10 * fs))) if warm else len(cl)
        for i in range(stop):
            t = cl[i]
            h = heights[i]
            # search-back: no beat for 1.5 median RR -> the largest noise peak in the gap above thr/2 is a beat
            while beats and noise_idx and t - beats[-1] > 1.5 * rrbuf.med:
                last = beats[-1]
                lo_t = last + (twin if rrbuf.med > 0.5 * fs else refr)
                best, best_h = -1, 0.5 * thr
                for j in noise_idx:
                    if lo_t <= cl[j] <= t - refr and heights[j] > best_h:
                        best, best_h = j, heights[j]
                if best < 0:
                    break
                tb = cl[best]
                rrbuf.push(tb - last)
                beats.append(tb)
                last_slope = smax[best]
                sbuf.push(last_slope)
                qbuf.push(best_h)
                thr = nbuf.med + 0.3125 * (qbuf.med - nbuf.med)
                noise_idx = [j for j in noise_idx if cl[j] > tb]
            is_beat = h > thr
            if is_beat and beats:
                gap = t - beats[-1]
                # a T wave lies within 360 ms of its beat with a smaller slope; a candidate this premature
                # relative to the running rhythm must look clearly QRS-like (slope >= 0.75 of the reference)
                if gap < twin:
                    ratio = 0.75 if gap < 0.6 * rrbuf.med else 0.5
                    is_beat = smax[i] >= ratio * max(last_slope, sbuf.med)
            if is_beat:
                if beats:
                    rrbuf.push(t - beats[-1])
                beats.append(t)
                last_slope = smax[i]
                sbuf.push(last_slope)
                qbuf.push(h)
                noise_idx = []
            else:
                nbuf.push(h)
                noise_idx.append(i)
            thr = nbuf.med + 0.3125 * (qbuf.med - nbuf.med)
        qrs_lvl = qbuf.med
    return beats


def _place(beats_w: list[int], slope: _SlopeProbe, n_out: int, fs: float, wfs: float) -> np.ndarray:
    """Fiducial = centroid of the squared fused slope within +-60 ms of the envelope peak (the QRS's centre of
    activity over all leads).  Unlike "largest deflection", it cannot hop between the R and S waves of one
    morphology from beat to beat, so RR series carry no placement jitter."""
    if not beats_w:
        return np.zeros(0, dtype=np.int64)
    win, sl = slope.windows(np.asarray(beats_w, dtype=np.int64), int(0.06 * wfs))
    e = sl**2
    cen = (e * win).sum(axis=1) / np.maximum(e.sum(axis=1), 1e-20)
    pos = np.round(cen * fs / wfs).astype(np.int64)
    return np.unique(np.clip(pos, 0, n_out - 1))


def detect_qrs(signal_mv: np.ndarray, fs: float, lead_weights: np.ndarray | None = None) -> np.ndarray:
    """QRS complexes in a 1-D or samples x leads signal (mV). Returns sorted sample indices at `fs`.

    `lead_weights` (one per lead, 0..1) lets the caller drop leads it already knows are unusable.
    Raises ValueError for inputs shorter than 1 s or an implausible sampling rate.
    """
    x = _validate(signal_mv, float(fs))
    x250 = resample_for_detection(x.astype(np.float32), float(fs))
    wfs = work_rate(float(fs))
    fused, slope = envelopes(x250, wfs, lead_weights)
    beats = _classify_peaks(fused, slope, wfs)
    return _place(beats, slope, x.shape[0], float(fs), wfs)
