"""Global PR / QRS / QT measurement on a multi-lead median beat, QTc and frontal-plane axes.

The field notes (and IEC 60601-2-25) call for global intervals: all leads are delineated together on their
median beats, QRS onset/offset from the spatial velocity (root of the summed squared slopes over the leads,
which rises when the first lead departs and falls when the last lead returns), P onset as the earliest
lasting departure of the atrial vector magnitude before the QRS, and T end by the tangent method on the
vector magnitude of the repolarisation wave, i.e. its latest return to baseline over the leads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from services.ecg.analysis.filters import as_2d, diagnostic_filter
from services.ecg.analysis.pace import blank_spikes, detect_pacing_spikes

PRE_S = 0.5
POST_S = 0.8


@dataclass
class MedianBeat:
    template: np.ndarray  # window x leads, mV
    r: int  # index of the aligned R point in the template
    fs: float
    n_beats: int
    rr_ms: float


def bazett(qt_ms: float, rr_ms: float) -> float:
    return qt_ms / math.sqrt(rr_ms / 1000.0)


def fridericia(qt_ms: float, rr_ms: float) -> float:
    return qt_ms / (rr_ms / 1000.0) ** (1.0 / 3.0)


def _align(
    x: np.ndarray, beats: np.ndarray, fs: float, ref: np.ndarray, half: int, shift: int, step: int = 1
) -> np.ndarray:
    """Shift every beat by up to +-shift samples (in steps) to best match `ref` (QRS region, leads flattened)."""
    n = x.shape[0]
    best = np.zeros(len(beats), dtype=np.int64)
    best_c = np.full(len(beats), -np.inf)
    idx = np.arange(-half, half + 1)
    refz = ref - ref.mean(axis=0)
    for s in range(-shift, shift + 1, step):
        win = np.clip(beats[:, None] + idx[None, :] + s, 0, n - 1)
        seg = x[win]  # beats x w x leads
        seg = seg - seg.mean(axis=1, keepdims=True)
        c = (seg * refz[None]).sum(axis=(1, 2))
        upd = c > best_c
        best[upd] = s
        best_c[upd] = c[upd]
    return beats + best


def median_beat(xf: np.ndarray, fs: float, beats: np.ndarray, keep: np.ndarray | None = None) -> MedianBeat:
    """Aligned median beat of the dominant morphology (beats with regular RR and a typical QRS)."""
    n = xf.shape[0]
    pre, post = int(PRE_S * fs), int(POST_S * fs)
    beats = np.asarray(beats, dtype=np.int64)
    rr = np.diff(beats)
    rr_med = float(np.median(rr)) if len(rr) else float(fs)
    sel = np.ones(len(beats), dtype=bool)
    if keep is not None:
        sel &= keep
    # beats with a premature coupling (ectopic or aberrant) distort P and QRS: keep regular ones
    if len(rr) >= 2:
        prev_rr = np.concatenate([[rr_med], rr])
        sel &= prev_rr > 0.8 * rr_med
    sel &= (beats - pre >= 0) & (beats + post < n)
    if sel.sum() < 1:
        sel = (beats - pre >= 0) & (beats + post < n)
    if sel.sum() < 1:  # very short record: pad with edge values
        sel = np.ones(len(beats), dtype=bool)
    b = beats[sel]
    half = int(0.08 * fs)
    big = int(0.05 * fs)
    pad = np.pad(xf, ((pre + half + big, post + half + big), (0, 0)), mode="edge")
    bp = b + pre + half + big
    idx = np.arange(-half, half + 1)

    def windows(pos: np.ndarray) -> np.ndarray:
        return pad[np.clip(pos[:, None] + idx[None, :], 0, pad.shape[0] - 1)]

    qrs = windows(bp)
    qz = qrs - qrs.mean(axis=1, keepdims=True)
    # medoid beat as the first reference (a median of misaligned beats would be a blur), then coarse
    # alignment (+-50 ms: detection may sit on different waves of the same complex), dominant-morphology
    # selection by correlation, and fine alignment on the median of the selected beats
    flat = qz.reshape(len(bp), -1)
    nrm = np.linalg.norm(flat, axis=1)
    cc = (flat @ flat.T) / np.maximum(np.outer(nrm, nrm), 1e-12)
    ref = qrs[int(np.argmax(cc.sum(axis=1)))]
    bp = _align(pad, bp, fs, ref, half, big, step=max(int(0.004 * fs), 1))  # coarse, 4 ms steps
    qrs = windows(bp)
    ref = np.median(qrs, axis=0)
    qz = qrs - qrs.mean(axis=1, keepdims=True)
    rz = ref - ref.mean(axis=0)
    corr = (qz * rz).sum(axis=(1, 2)) / np.maximum(np.sqrt((qz**2).sum(axis=(1, 2)) * (rz**2).sum()), 1e-12)
    good = corr > 0.9
    if good.sum() >= max(1, len(bp) // 3):
        bp = bp[good]
        ref = np.median(qrs[good], axis=0)
    bp = _align(pad, bp, fs, ref, half, max(int(0.01 * fs), 1))
    w = np.arange(-pre, post)
    segs = pad[np.clip(bp[:, None] + w[None, :], 0, pad.shape[0] - 1)]
    return MedianBeat(template=np.median(segs, axis=0), r=pre, fs=fs, n_beats=len(bp), rr_ms=rr_med / fs * 1000)


def _first_run(mask: np.ndarray, run: int) -> int:
    """Index of the first sample that starts `run` consecutive True values, or -1."""
    if run <= 1:
        hits = np.flatnonzero(mask)
        return int(hits[0]) if len(hits) else -1
    c = np.convolve(mask.astype(np.int32), np.ones(run, dtype=np.int32), mode="valid")
    hits = np.flatnonzero(c == run)
    return int(hits[0]) if len(hits) else -1


# Delineation constants (fractions of the wave's own peak spatial velocity above the noise floor).
PARAMS: dict[str, float] = {
    "qrs_on_frac": 0.015,
    "qrs_off_frac": 0.015,
    "qrs_on_run_ms": 8.0,
    "qrs_off_run_ms": 12.0,
    "t_frac": 0.07,
    "p_frac": 0.15,
    "p_run_ms": 8.0,
    "smooth_ms": 8.0,
    "p_smooth_ms": 20.0,
}


def _spatial_velocity(t: np.ndarray, fs: float, smooth_ms: float) -> tuple[np.ndarray, np.ndarray]:
    sm = ndimage.uniform_filter1d(t, size=max(int(smooth_ms * fs / 1000.0), 1), axis=0)
    return sm, np.sqrt((np.gradient(sm, axis=0) ** 2).sum(axis=1)) * fs  # mV/s


def delineate(mb: MedianBeat, params: dict[str, float] | None = None) -> dict[str, int | None]:
    """Global fiducials on a median beat: p_on, p_peak, qrs_on, qrs_off, t_peak, t_end (template indices)."""
    prm = PARAMS | (params or {})
    t, r, fs = mb.template, mb.r, mb.fs
    w = t.shape[0]
    ms = fs / 1000.0
    sm, sv = _spatial_velocity(t, fs, prm["smooth_ms"])
    # QRS: peak of the spatial velocity near R; onset/offset where it falls to a fraction of the peak
    lo, hi = max(r - int(80 * ms), 0), min(r + int(80 * ms), w)
    pk = lo + int(np.argmax(sv[lo:hi]))
    svmax = float(sv[pk])
    quiet = sv[max(r - int(350 * ms), 0) : max(r - int(60 * ms), 1)]
    noise = float(np.percentile(quiet, 10)) if len(quiet) else 0.0
    # onset: scanning back from the peak, the first lasting drop below the threshold.  When the P wave runs
    # into the QRS (short PR, fast rates) there is no quiet run at the low threshold: raise it step by step
    lo_on = max(pk - int(150 * ms), 0)
    qrs_on = -1
    for frac in (prm["qrs_on_frac"], 0.04, 0.08):
        back = sv[lo_on : pk + 1][::-1] < noise + frac * (svmax - noise)
        i = _first_run(back, max(int(prm["qrs_on_run_ms"] * ms), 1))
        if i >= 0:
            qrs_on = pk - i
            break
    if qrs_on < 0:  # still nothing quiet: the velocity valley before the complex
        qrs_on = lo_on + int(np.argmin(sv[lo_on : max(pk - int(20 * ms), lo_on + 1)]))
    fwd = sv[pk : min(pk + int(250 * ms), w)] < noise + prm["qrs_off_frac"] * (svmax - noise)
    j = _first_run(fwd, max(int(prm["qrs_off_run_ms"] * ms), 1))
    if j >= 0:
        qrs_off = pk + j
    else:  # the QRS runs into the ST-T without a quiet run (wide or paced complexes): the velocity valley
        b0 = min(pk + int(20 * ms), w - 2)
        qrs_off = b0 + int(np.argmin(sv[b0 : min(pk + int(200 * ms), w - 1)]))
    base = t[max(qrs_on - int(20 * ms), 0) : qrs_on + 1].mean(axis=0)  # PR-segment level per lead
    rr = mb.rr_ms * ms
    # T wave: after the ST segment; its end is where the spatial velocity of the descending limb has
    # fallen back to the noise floor (the latest return to baseline over the leads)
    t_lo = qrs_off + int(40 * ms)
    # search no further than a QT of 0.62 * sqrt(RR) (Bazett QTc 620 ms): beyond lies the next P wave or a U wave
    qt_max = 620.0 * math.sqrt(max(mb.rr_ms, 300.0) / 1000.0)
    t_hi = min(qrs_on + int(min(0.9 * rr, 700 * ms, qt_max * ms)), w - 1)
    t_peak = t_end = None
    if t_hi - t_lo > int(60 * ms):
        ut = np.sqrt(((sm - base) ** 2).sum(axis=1))
        t_peak = t_lo + int(np.argmax(ut[t_lo:t_hi]))
        after = sv[t_peak:t_hi]
        if len(after) > 3:
            k = int(np.argmax(after[: int(150 * ms)]))  # the descending limb follows the apex within 150 ms
            vmax = float(after[k])
            tail = after[k:] < max(noise + prm["t_frac"] * (vmax - noise), 1.5 * noise)
            j = _first_run(tail, max(int(10 * ms), 1))
            t_end = t_peak + k + (j if j >= 0 else len(tail) - 1)
    # P wave: spatial velocity of the low-passed template before the QRS
    p_on = p_peak = None
    p_lo = max(qrs_on - int(min(420 * ms, 0.85 * rr)), 0)
    if t_end is not None:  # at fast rates the previous beat's T wave reaches into the P window
        p_lo = max(p_lo, t_end - int(rr) + int(20 * ms))
    p_hi = qrs_on - int(20 * ms)
    if p_hi - p_lo > int(60 * ms):
        smp, svp = _spatial_velocity(t, fs, prm["p_smooth_ms"])
        seg = svp[p_lo:p_hi]
        k = int(np.argmax(seg))
        vmax = float(seg[k])
        pn = float(np.percentile(seg, 10))
        up = np.sqrt(((smp[p_lo:p_hi] - base) ** 2).sum(axis=1))
        amp = float(up.max() - np.percentile(up, 5))
        if amp > 0.03 and vmax > 3.0 * pn:
            # the P wave is the last cluster of supra-threshold atrial activity before the QRS; gaps shorter
            # than 40 ms (the dip in velocity at the P apex, or between the humps of a notched P) are bridged
            thr = pn + prm["p_frac"] * (vmax - pn)
            above = seg > thr
            idx = np.flatnonzero(above)
            gaps = np.flatnonzero(np.diff(idx) > int(40 * ms))
            start = int(idx[gaps[-1] + 1]) if len(gaps) else int(idx[0])
            end = int(idx[-1])
            dur = end - start
            # a P wave lasts 24..240 ms (notched P included) and ends within 300 ms of the QRS;
            # anything else is fibrillatory waves or noise
            if int(prm["p_run_ms"] * 3 * ms) <= dur <= int(240 * ms) and (p_hi - (p_lo + end)) <= int(300 * ms):
                p_on = p_lo + start
                p_peak = p_lo + start + int(np.argmax(up[start : end + 1]))
    return {"p_on": p_on, "p_peak": p_peak, "qrs_on": qrs_on, "qrs_off": qrs_off, "t_peak": t_peak, "t_end": t_end}


def _axis(t: np.ndarray, lead_names: list[str], a: int | None, b: int | None) -> float | None:
    """Frontal axis (degrees) from the net area of a wave in leads I and aVF (or derived from I and II)."""
    if a is None or b is None or b <= a:
        return None
    names = [n.upper() for n in lead_names]
    area = t[a:b].sum(axis=0)
    if "I" not in names:
        return None
    i_ = area[names.index("I")]
    if "AVF" in names:
        f = area[names.index("AVF")]
    elif "II" in names:
        f = area[names.index("II")] - i_ / 2.0
    else:
        return None
    if abs(i_) + abs(f) < 1e-9:
        return None
    return round(math.degrees(math.atan2(f, i_)), 0)


def measure_from_median(mb: MedianBeat, lead_names: list[str]) -> dict[str, Any]:
    f = delineate(mb)
    ms = 1000.0 / mb.fs

    def iv(a: int | None, b: int | None) -> float | None:
        return round((b - a) * ms, 0) if a is not None and b is not None else None

    qt = iv(f["qrs_on"], f["t_end"])
    rr = mb.rr_ms
    t = mb.template
    base = t[max((f["qrs_on"] or 0) - int(0.02 * mb.fs), 0) : (f["qrs_on"] or 0) + 1].mean(axis=0)
    tb = t - base
    t_end = f["t_end"]
    q_on = f["qrs_on"]
    p_end = q_on - int(0.02 * mb.fs) if (f["p_on"] is not None and q_on is not None) else None
    fid_ms: dict[str, float | None] = {k: (round((v - mb.r) * ms, 0) if v is not None else None) for k, v in f.items()}
    return {
        "pr_ms": iv(f["p_on"], f["qrs_on"]),
        "qrs_ms": iv(f["qrs_on"], f["qrs_off"]),
        "qt_ms": qt,
        "qtc_ms": round(bazett(qt, rr), 0) if qt else None,
        "qtc_fridericia_ms": round(fridericia(qt, rr), 0) if qt else None,
        "p_axis": _axis(tb, lead_names, f["p_on"], p_end),
        "qrs_axis": _axis(tb, lead_names, f["qrs_on"], f["qrs_off"]),
        "t_axis": _axis(tb, lead_names, f["qrs_off"], t_end),
        "rr_ms": round(rr, 0),
        "hr_bpm": round(60000.0 / rr, 0) if rr > 0 else None,
        "p_wave": f["p_on"] is not None,
        "n_beats_median": mb.n_beats,
        "fiducials_ms": fid_ms,
    }


def measure_intervals(
    signal_mv: np.ndarray,
    fs: float,
    lead_names: list[str],
    beats: np.ndarray | None = None,
    usable: list[bool] | None = None,
    filtered: np.ndarray | None = None,
) -> dict[str, object]:
    """Global PR, QRS, QT, QTc (Bazett, Fridericia), P/QRS/T axes, RR and HR for a samples x leads array."""
    from services.ecg.analysis.qrs import detect_qrs

    x = as_2d(signal_mv)
    if x.shape[1] != len(lead_names):
        raise ValueError(f"{x.shape[1]} leads but {len(lead_names)} lead names")
    if x.shape[0] < int(2 * fs):
        raise ValueError("at least 2 s of signal are needed to measure intervals")
    if filtered is None:
        x = np.nan_to_num(x)
        spikes = detect_pacing_spikes(x, fs)
        if len(spikes):
            x = blank_spikes(x, fs, spikes)
        filtered = diagnostic_filter(x, fs)
    xf = filtered
    weights = np.asarray(usable, dtype=float) if usable is not None else None
    if beats is None:
        beats = detect_qrs(x, fs, lead_weights=weights)
    if len(beats) < 2:
        raise ValueError("fewer than two QRS complexes: intervals cannot be measured")
    cols = list(range(x.shape[1])) if usable is None else [i for i, ok in enumerate(usable) if ok]
    if not cols:
        cols = list(range(x.shape[1]))
    names = [lead_names[i] for i in cols]
    mb = median_beat(xf[:, cols], fs, np.asarray(beats))
    out = measure_from_median(mb, names)
    return out


__all__ = ["MedianBeat", "bazett", "delineate", "fridericia", "measure_intervals", "median_beat"]


def p_wave_consistency(xf: np.ndarray, beats: np.ndarray, mb: MedianBeat, fid: dict[str, int | None]) -> float | None:
    """Median correlation of each beat's P-wave window with the median beat's: high when a P wave precedes every
    beat (sinus), near zero for fibrillatory waves that only average into a small bump."""
    p_on, q_on = fid.get("p_on"), fid.get("qrs_on")
    if p_on is None or q_on is None or len(beats) < 3:
        return None
    a, b = max(p_on - mb.r - int(0.02 * mb.fs), -mb.r), q_on - mb.r
    n = xf.shape[0]
    b_ok = np.asarray(beats)[(np.asarray(beats) + a >= 0) & (np.asarray(beats) + b < n)]
    if len(b_ok) < 3 or b - a < 4:
        return None
    ref = mb.template[mb.r + a : mb.r + b]
    ref = ref - ref.mean(axis=0)
    segs = xf[b_ok[:, None] + np.arange(a, b)[None, :]]
    segs = segs - segs.mean(axis=1, keepdims=True)
    num = (segs * ref[None]).sum(axis=(1, 2))
    den = np.sqrt((segs**2).sum(axis=(1, 2)) * (ref**2).sum())
    return float(np.median(num / np.maximum(den, 1e-12)))
