"""Ventricular fibrillation / flutter recognition from the spectrum, and atrial activity for AV block.

VF is a coarse quasi-sinusoidal oscillation at 3-9 Hz without organised QRS complexes.  Motion artefact sits
below 2 Hz, muscle noise above 20 Hz, so the test asks for most of the 1-40 Hz power to fall in 2.5-9 Hz
with a dominant frequency of 3-8 Hz, a real amplitude, and agreement between the leads.
"""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

from services.ecg.analysis.filters import as_2d


def vf_windows(x: np.ndarray, fs: float, win_s: float = 4.0) -> np.ndarray:
    """Per 4-s window: True when the signal looks like VF/VFL in most leads that carry signal."""
    a = as_2d(x)
    w = int(win_s * fs)
    nwin = a.shape[0] // w
    if nwin == 0:
        return np.zeros(0, dtype=bool)
    seg = a[: nwin * w].reshape(nwin, w, a.shape[1])
    seg = seg - seg.mean(axis=1, keepdims=True)
    live = np.ptp(seg, axis=1) > 0.2  # VF amplitude is >= 0.2 mV; lead-off / flat leads are not VF
    freqs = np.fft.rfftfreq(w, 1.0 / fs)
    band = (freqs >= 1.0) & (freqs <= 40.0)
    vfb = (freqs >= 2.5) & (freqs <= 9.0)
    spec = np.abs(np.fft.rfft(seg * np.hanning(w)[None, :, None], axis=1)) ** 2  # windows x freqs x leads
    tot = spec[:, band].sum(axis=1)
    conc = spec[:, vfb].sum(axis=1) / np.maximum(tot, 1e-12)
    dom = freqs[band][np.argmax(spec[:, band], axis=1)]
    vf_lead = live & (conc > 0.75) & (dom >= 3.0) & (dom <= 8.0)
    need = np.maximum(1, np.ceil(0.6 * live.sum(axis=1)))
    return live.any(axis=1) & (vf_lead.sum(axis=1) >= need)


def atrial_rate(
    xf: np.ndarray, fs: float, beats: np.ndarray, template: np.ndarray, r: int, qrs_on: int | None, t_end: int | None
) -> tuple[float | None, float | None]:
    """Atrial (P) rate after QRST cancellation, and the spread of PR intervals (ms) - for AV dissociation.

    Returns (None, None) unless the atrial waves march out regularly (PP within 12 % of a common period).

    The median beat is subtracted at every beat (QRS onset to T end); what remains between the ventricular
    complexes is atrial activity.  P waves are peaks of its low-passed vector magnitude.
    """
    if qrs_on is None or t_end is None or len(beats) < 3:
        return None, None
    x = as_2d(xf).copy()
    n = x.shape[0]
    a, b = qrs_on - r, t_end - r
    for s in np.asarray(beats, dtype=np.int64):
        lo, hi = s + a, s + b
        if lo < 0 or hi >= n:
            x[max(lo, 0) : min(hi, n)] = 0.0
            continue
        x[lo:hi] -= template[qrs_on:t_end]
    sos = sps.butter(2, [3.0 / (fs / 2), 15.0 / (fs / 2)], btype="bandpass", output="sos")
    mag = np.sqrt((sps.sosfiltfilt(sos, x, axis=0) ** 2).sum(axis=1))
    noise = float(np.median(mag))
    peaks, _ = sps.find_peaks(mag, height=max(4.0 * noise, 0.03), distance=int(0.25 * fs))
    # residue of imperfect cancellation inside the QRS is not atrial activity
    rel = peaks[:, None] - np.asarray(beats)[None, :]
    in_qrs = ((rel >= a - int(0.02 * fs)) & (rel <= a + int(0.14 * fs))).any(axis=1)
    peaks = peaks[~in_qrs]
    if len(peaks) < 3:
        return None, None
    pp = np.diff(peaks) / fs
    med = float(np.median(pp))
    # P waves hidden in a QRS are lost to the cancellation: intervals may be whole multiples of the PP
    k = pp / med
    if np.mean(np.abs(k - np.round(k)) < 0.12) < 0.75:
        return None, None
    rate = 60.0 / med
    # PR spread: each beat's distance to the nearest preceding P wave
    idx = np.searchsorted(peaks, beats) - 1
    ok = idx >= 0
    pr = (np.asarray(beats)[ok] - peaks[idx[ok]]) / fs * 1000.0
    return rate, float(np.std(pr)) if len(pr) >= 3 else None
