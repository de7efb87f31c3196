"""Beat classification (N, S, V, paced, unclassifiable) from RR features and morphology.

Each beat is compared with the dominant template (median of the main morphology cluster, carried over from
the previous chunk in long records): correlation over the QRS (best over +-20 ms shifts), QRS width from the
slope energy, and amplitude ratio.  Prematurity is judged against the local median RR.

* P  (paced): a pacing spike precedes the beat.
* V  (ventricular ectopic): morphology differs from the template (low correlation, or wider / larger) -
  premature or not (ventricular escape and runs count as V too).
* S  (supraventricular ectopic): template morphology but premature (RR < 0.85 x local RR, followed by a
  longer interval).  Not assigned during atrial fibrillation, where every interval is "premature".
* Q  (unclassifiable): the beat sits in an unusable (noisy) stretch.
* N  otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

BEAT_CLASSES = ("N", "S", "V", "P", "Q")


@dataclass
class BeatFeatures:
    samples: np.ndarray
    rr_prev_ms: np.ndarray
    rr_next_ms: np.ndarray
    local_rr_ms: np.ndarray
    corr: np.ndarray
    width_ms: np.ndarray
    amp_ratio: np.ndarray
    clean: np.ndarray  # beat matches the dominant template (or, for V beats, the other V beats)


@dataclass
class Template:
    """Dominant QRS morphology (window x leads) with its width; passed from chunk to chunk."""

    qrs: np.ndarray
    width_ms: float
    amp: float
    fs: float


@dataclass
class BeatResult:
    labels: list[str]
    features: BeatFeatures
    template: Template | None
    counts: dict[str, int] = field(default_factory=dict)


_PRE_S, _POST_S = 0.08, 0.12


def _windows(x: np.ndarray, pos: np.ndarray, fs: float) -> np.ndarray:
    pre, post = int(_PRE_S * fs), int(_POST_S * fs)
    idx = np.clip(pos[:, None] + np.arange(-pre, post)[None, :], 0, x.shape[0] - 1)
    return x[idx]  # beats x window x leads


def _width_ms(seg: np.ndarray, fs: float) -> np.ndarray:
    """QRS width per beat: span where the summed |slope| exceeds 20 % of its peak."""
    sl = np.abs(np.diff(seg, axis=1)).sum(axis=2)
    sl = ndimage.uniform_filter1d(sl, size=max(int(0.01 * fs), 1), axis=1)
    above = sl > 0.2 * sl.max(axis=1, keepdims=True)
    first = np.argmax(above, axis=1)
    last = above.shape[1] - 1 - np.argmax(above[:, ::-1], axis=1)
    return (last - first + 1) / fs * 1000.0


def _local_rr(rr: np.ndarray, k: int = 9) -> np.ndarray:
    if len(rr) == 0:
        return rr
    size = min(k, len(rr)) | 1
    return ndimage.median_filter(rr, size=size, mode="nearest")


def dominant_template(seg: np.ndarray, fs: float, sample: int = 200) -> Template:
    """Medoid of (up to `sample`) beats, then the median of the beats that correlate > 0.9 with it."""
    n = seg.shape[0]
    pick = np.linspace(0, n - 1, min(n, sample)).astype(int)
    s = seg[pick] - seg[pick].mean(axis=1, keepdims=True)
    flat = s.reshape(len(pick), -1)
    nrm = np.maximum(np.linalg.norm(flat, axis=1), 1e-12)
    cc = (flat @ flat.T) / np.outer(nrm, nrm)
    med = int(np.argmax((cc > 0.9).sum(axis=1)))
    members = pick[cc[med] > 0.9]
    qrs = np.median(seg[members], axis=0)
    w = float(np.median(_width_ms(seg[members], fs)))
    amp = float(np.ptp(qrs, axis=0).max())
    return Template(qrs=qrs, width_ms=w, amp=amp, fs=fs)


def _best_corr(seg: np.ndarray, tmpl: np.ndarray, fs: float, max_shift_s: float = 0.02) -> np.ndarray:
    """Per beat, the largest correlation with the template over small shifts (beats placed on other waves)."""
    shift = max(int(max_shift_s * fs), 1)
    w = seg.shape[1]
    core = slice(shift, w - shift)
    t = tmpl[core] - tmpl[core].mean(axis=0)
    tn = np.sqrt((t**2).sum())
    best = np.full(seg.shape[0], -1.0)
    for s in range(-shift, shift + 1, max(1, shift // 5)):
        part = seg[:, shift + s : w - shift + s]
        p = part - part.mean(axis=1, keepdims=True)
        c = (p * t[None]).sum(axis=(1, 2)) / np.maximum(np.sqrt((p**2).sum(axis=(1, 2))) * tn, 1e-12)
        best = np.maximum(best, c)
    return best


def classify_beats(
    xf: np.ndarray,
    fs: float,
    beats: np.ndarray,
    paced: np.ndarray | None = None,
    unusable: np.ndarray | None = None,
    af: np.ndarray | None = None,
    template: Template | None = None,
) -> BeatResult:
    """Label every beat. `xf` is the filtered samples x leads signal (usable leads only).

    `paced`, `unusable`, `af` are optional per-beat booleans (pacing spike before the beat, beat in a noisy
    stretch, beat inside atrial fibrillation).
    """
    beats = np.asarray(beats, dtype=np.int64)
    n = len(beats)
    if n == 0:
        empty = np.zeros(0)
        return BeatResult([], BeatFeatures(beats, empty, empty, empty, empty, empty, empty, empty > 0), template, {})
    x = xf if xf.ndim == 2 else xf[:, None]
    seg = _windows(x, beats, fs)
    if template is None or template.qrs.shape != seg.shape[1:]:
        template = dominant_template(seg, fs) if n >= 3 else None
    rr = np.diff(beats) / fs * 1000.0
    local = _local_rr(rr)
    rr_prev = np.concatenate([[np.nan], rr])
    rr_next = np.concatenate([rr, [np.nan]])
    loc_prev = np.concatenate([[local[0] if len(local) else np.nan], local])
    if template is not None:
        corr = _best_corr(seg, template.qrs, fs)
        width = _width_ms(seg, fs)
        amp = np.ptp(seg, axis=1).max(axis=1) / max(template.amp, 1e-6)
        tw = template.width_ms
    else:
        corr = np.ones(n)
        width = _width_ms(seg, fs)
        amp = np.ones(n)
        tw = float(np.median(width))
    premature = rr_prev < 0.85 * loc_prev
    pause_after = rr_next > 1.1 * loc_prev
    # a noisy normal beat also correlates poorly, but keeps the template's width and size: low correlation
    # alone only counts when it is very low
    different = (corr < 0.5) | ((corr < 0.85) & ((width > tw + 25) | (amp > 1.6) | (amp < 0.5)))
    wide = (width > max(tw + 40, 120)) & (corr < 0.9)
    labels = np.full(n, "N", dtype="<U1")
    labels[different | wide] = "V"
    s_mask = premature & ~(different | wide) & (pause_after | (rr_prev < 0.75 * loc_prev))
    if af is not None:
        s_mask &= ~np.asarray(af, dtype=bool)
    labels[s_mask] = "S"
    if paced is not None:
        labels[np.asarray(paced, dtype=bool)] = "P"
    if unusable is not None:
        labels[np.asarray(unusable, dtype=bool)] = "Q"
    # a complex cut by the record's edge cannot be compared with the template
    cut = (beats < int(_PRE_S * fs)) | (beats + int(_POST_S * fs) > x.shape[0])
    labels[cut & (labels != "P")] = "Q"
    # ectopic beats that resemble each other are genuine (a second morphology), not noise: signal quality
    # counts a beat as clean when it matches the dominant template or, for V beats, the median V beat
    clean = corr > 0.8
    v = labels == "V"
    if v.sum() >= 2:
        clean[v] |= _best_corr(seg[v], np.median(seg[v], axis=0), fs) > 0.8
    feats = BeatFeatures(beats, rr_prev, rr_next, loc_prev, corr, width, amp, clean)
    out = labels.tolist()
    return BeatResult(out, feats, template, {c: out.count(c) for c in BEAT_CLASSES})


def rr_statistics(beats: np.ndarray, fs: float, labels: list[str] | None = None) -> dict[str, float | None]:
    """Heart rate and RR statistics; SDNN/RMSSD/pNN50 over normal-to-normal intervals when labels are given."""
    beats = np.asarray(beats, dtype=np.int64)
    if len(beats) < 2:
        return {
            "hr_bpm": None,
            "rr_mean_ms": None,
            "rr_min_ms": None,
            "rr_max_ms": None,
            "sdnn_ms": None,
            "rmssd_ms": None,
            "pnn50": None,
            "n_beats": float(len(beats)),
        }
    rr = np.diff(beats) / fs * 1000.0
    nn = rr
    if labels is not None and len(labels) == len(beats):
        lab = np.asarray(labels)
        ok = (lab[1:] == "N") & (lab[:-1] == "N")
        if ok.sum() >= 2:
            nn = rr[ok]
    d = np.diff(nn)
    return {
        "hr_bpm": round(60000.0 / float(np.mean(rr)), 1),
        "rr_mean_ms": round(float(np.mean(rr)), 1),
        "rr_min_ms": round(float(rr.min()), 1),
        "rr_max_ms": round(float(rr.max()), 1),
        "sdnn_ms": round(float(np.std(nn)), 1),
        "rmssd_ms": round(float(np.sqrt(np.mean(d**2))), 1) if len(d) else None,
        "pnn50": round(float(np.mean(np.abs(d) > 50)), 3) if len(d) else None,
        "n_beats": float(len(beats)),
    }
