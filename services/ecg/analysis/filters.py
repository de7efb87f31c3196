"""Filtering and per-lead signal quality.

All functions are pure: they take a numpy array (1-D, or samples x leads) in millivolts and the sampling
rate, and return new arrays.  Filters are zero-phase (forward-backward) so that fiducial points keep their
position.  Designs are cached per (fs, band) because the same rates recur constantly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import signal as sps

MAINS_HZ = 50.0  # China's mains frequency


def as_2d(x: np.ndarray) -> np.ndarray:
    """View a 1-D signal as samples x 1; leave 2-D arrays alone."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        return a[:, None]
    if a.ndim != 2:
        raise ValueError(f"signal must be 1-D or samples x leads, got shape {a.shape}")
    return a


@lru_cache(maxsize=64)
def _butter_sos(fs: float, low: float | None, high: float | None, order: int) -> np.ndarray:
    nyq = fs / 2.0
    if high is not None and high >= nyq * 0.95:
        high = None
    if low is not None and high is not None:
        return sps.butter(order, [low / nyq, high / nyq], btype="bandpass", output="sos")
    if low is not None:
        return sps.butter(order, low / nyq, btype="highpass", output="sos")
    if high is not None:
        return sps.butter(order, high / nyq, btype="lowpass", output="sos")
    raise ValueError("a filter needs a low or a high cut-off")


def bandpass(x: np.ndarray, fs: float, low: float | None, high: float | None, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth band-pass (or high-/low-pass when one edge is None) along axis 0."""
    sos = _butter_sos(float(fs), low, high, order)
    a = np.asarray(x, dtype=np.float64)
    padlen = max(min(a.shape[0] - 1, 3 * (2 * len(sos) + 1) * 4), 0)
    if a.ndim == 2:  # filter along contiguous memory (leads x samples), hand back samples x leads
        return sps.sosfiltfilt(sos, np.ascontiguousarray(a.T), axis=1, padlen=padlen).T
    return sps.sosfiltfilt(sos, a, axis=0, padlen=padlen)


@lru_cache(maxsize=16)
def _notch_ba(fs: float, f0: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    b, a = sps.iirnotch(f0, q, fs)
    return b, a


def notch(x: np.ndarray, fs: float, f0: float = MAINS_HZ, q: float = 30.0) -> np.ndarray:
    """Zero-phase mains notch (and its 2nd harmonic when below Nyquist). No-op when f0 is above Nyquist."""
    out = np.asarray(x, dtype=np.float64)
    for f in (f0, 2 * f0):
        if f < fs / 2 * 0.98:
            b, a = _notch_ba(float(fs), float(f), q)
            pad = min(out.shape[0] - 1, 3 * max(len(a), len(b)))
            if out.ndim == 2:
                out = sps.filtfilt(b, a, np.ascontiguousarray(out.T), axis=1, padlen=pad).T
            else:
                out = sps.filtfilt(b, a, out, axis=0, padlen=pad)
    return out


def remove_baseline(x: np.ndarray, fs: float, cutoff_hz: float = 0.67) -> np.ndarray:
    """Baseline-wander removal: zero-phase high-pass at 0.67 Hz (AHA lower limit for diagnostic ECG).

    Zero-phase filtering keeps the ST segment free of the distortion a one-pass high-pass would add.
    """
    return bandpass(x, fs, cutoff_hz, None, order=2)


def mains_present(x: np.ndarray, fs: float, f0: float = MAINS_HZ, max_seconds: float = 20.0) -> bool:
    """True when any lead carries a visible mains line: power in f0 +- 0.6 Hz well above the neighbouring band."""
    if f0 >= fs / 2 * 0.98:
        return False
    a = as_2d(x)[: int(max_seconds * fs)]
    if a.shape[0] < int(fs):
        return False
    spec = np.abs(np.fft.rfft(a - a.mean(axis=0), axis=0)) ** 2
    freqs = np.fft.rfftfreq(a.shape[0], 1.0 / fs)
    line = np.abs(freqs - f0) <= 0.6
    near = (np.abs(freqs - f0) > 1.5) & (np.abs(freqs - f0) < 8.0)
    if not line.any() or not near.any():
        return False
    ratio = spec[line].mean(axis=0) / np.maximum(np.median(spec[near], axis=0), 1e-18)
    return bool((ratio > 8.0).any())


def diagnostic_filter(x: np.ndarray, fs: float, high_hz: float = 40.0, mains: bool | None = None) -> np.ndarray:
    """Baseline removal + mains notch (only where mains is present: a notch rings on pacing spikes and sharp
    QRS edges) + gentle low-pass: the signal used for delineation, ST measurement and display."""
    y = remove_baseline(x, fs)
    if mains if mains is not None else mains_present(y, fs):
        y = notch(y, fs)
    if high_hz < fs / 2 * 0.9:
        y = bandpass(y, fs, None, high_hz, order=2)
    return y


def resample(x: np.ndarray, fs: float, fs_new: float) -> np.ndarray:
    """Polyphase resampling along axis 0 (anti-aliased)."""
    if abs(fs - fs_new) < 1e-9:
        return np.asarray(x, dtype=np.float64)
    frac = Fraction(fs_new / fs).limit_denominator(1000)
    return sps.resample_poly(np.asarray(x, dtype=np.float64), frac.numerator, frac.denominator, axis=0)


@dataclass
class LeadQuality:
    """Quality verdict for one lead.  `usable` is False when the lead should not feed any measurement."""

    lead: str
    usable: bool
    flat_line: bool = False
    lead_off: bool = False
    saturated: bool = False
    noisy: bool = False
    baseline_wander: bool = False
    noise_mv: float = 0.0
    amplitude_mv: float = 0.0
    snr_db: float = 0.0
    unusable_fraction: float = 0.0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _segment_stats(x: np.ndarray, fs: float, seg_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per segment: peak-to-peak of the QRS band, HF noise RMS, peak-to-peak of the raw signal."""
    n = x.shape[0]
    seg = max(int(seg_s * fs), 8)
    nseg = max(n // seg, 1)
    used = nseg * seg if n >= seg else n
    hi = x - bandpass(x, fs, None, min(35.0, fs / 2 * 0.8), order=2)  # > 35 Hz content: EMG and mains
    qrs = bandpass(x, fs, 5.0, min(30.0, fs / 2 * 0.8), order=2)
    shape = (nseg, used // nseg, x.shape[1])
    q = qrs[:used].reshape(shape)
    h = hi[:used].reshape(shape)
    r = x[:used].reshape(shape)
    return (q.max(axis=1) - q.min(axis=1)), np.sqrt((h**2).mean(axis=1)), (r.max(axis=1) - r.min(axis=1))


def lead_quality(
    signal_mv: np.ndarray, fs: float, lead_names: list[str] | None = None, seg_s: float = 2.0
) -> list[LeadQuality]:
    """Per-lead signal quality (see `quality_and_segments`)."""
    return quality_and_segments(signal_mv, fs, lead_names, seg_s)[0]


def quality_and_segments(
    signal_mv: np.ndarray, fs: float, lead_names: list[str] | None = None, seg_s: float = 2.0
) -> tuple[list[LeadQuality], np.ndarray]:
    """Per-lead signal quality: flat line / lead-off, saturation (clipping), HF noise, gross baseline wander.

    Works on 2 s segments: a lead is unusable when more than half of its segments are bad.  Saturation is a
    run of identical extreme values; lead-off is a flat or rail-pinned trace.
    """
    x = as_2d(signal_mv)
    n, nl = x.shape
    names = list(lead_names) if lead_names else [f"ch{i}" for i in range(nl)]
    if n < int(0.5 * fs):
        raise ValueError("signal too short for a quality estimate (< 0.5 s)")
    qpp, hf, rawpp = _segment_stats(np.nan_to_num(x), fs, seg_s)
    out: list[LeadQuality] = []
    for k in range(nl):
        col = x[:, k]
        problems: list[str] = []
        finite = np.isfinite(col)
        flat_seg = rawpp[:, k] < 0.02  # < 20 uV peak-to-peak over 2 s: nothing is connected
        # Saturation: the signal sits on its own extreme value for >= 40 ms repeatedly (ADC rail / amplifier clip).
        lo, hi = np.nanmin(col), np.nanmax(col)
        span = hi - lo
        sat_frac = 0.0
        if span > 0:
            at_rail = (col >= hi - span * 1e-3) | (col <= lo + span * 1e-3)
            sat_frac = float(at_rail.mean())
        saturated = sat_frac > 0.05 and span > 0.5
        # Noise: high-frequency RMS relative to QRS amplitude, per segment.
        noise_seg = (hf[:, k] > 0.08) & (hf[:, k] > 0.15 * np.maximum(qpp[:, k], 1e-6))
        huge_seg = rawpp[:, k] > 12.0  # > 12 mV swings are motion / electrode artefact, not ECG
        bad_seg = flat_seg | noise_seg | huge_seg
        unusable_fraction = float(bad_seg.mean())
        flat = bool(flat_seg.mean() > 0.5) or not finite.any()
        lead_off = (flat and span < 0.02) or bool((~finite).mean() > 0.5)
        noisy = bool(noise_seg.mean() > 0.5 or huge_seg.mean() > 0.5)
        wander = bool(np.median(rawpp[:, k]) > 3.0 * max(np.median(qpp[:, k]), 0.05))
        if flat:
            problems.append("flat_line")
        if lead_off:
            problems.append("lead_off")
        if saturated:
            problems.append("saturation")
        if noisy:
            problems.append("noise")
        if wander:
            problems.append("baseline_wander")
        amp = float(np.median(qpp[:, k]))
        noise = float(np.median(hf[:, k]))
        snr = 20 * np.log10(max(amp, 1e-6) / max(noise, 1e-6))
        usable = not (flat or lead_off or saturated or noisy) and unusable_fraction <= 0.5
        out.append(
            LeadQuality(
                lead=names[k],
                usable=bool(usable),
                flat_line=flat,
                lead_off=bool(lead_off),
                saturated=saturated,
                noisy=noisy,
                baseline_wander=wander,
                noise_mv=round(noise, 4),
                amplitude_mv=round(amp, 3),
                snr_db=round(float(snr), 1),
                unusable_fraction=round(unusable_fraction, 3),
                problems=problems,
            )
        )
    noise_seg_all = (hf > 0.08) & (hf > 0.15 * np.maximum(qpp, 1e-6))
    return out, ~((rawpp < 0.02) | noise_seg_all | (rawpp > 12.0))


def segment_usability(signal_mv: np.ndarray, fs: float, seg_s: float = 2.0) -> np.ndarray:
    """Boolean per segment (seg_s long) x lead: True where the segment looks like usable ECG."""
    x = np.nan_to_num(as_2d(signal_mv))
    qpp, hf, rawpp = _segment_stats(x, fs, seg_s)
    noise_seg = (hf > 0.08) & (hf > 0.15 * np.maximum(qpp, 1e-6))
    return ~((rawpp < 0.02) | noise_seg | (rawpp > 12.0))


def trim_calibration(x: np.ndarray, fs: float, min_flat_s: float = 0.04) -> tuple[int, int]:
    """(start, stop) rows of `x` without a leading/trailing calibration pulse or padding.

    Carts append a 1 mV square pulse or pad with a constant: stretches where every lead is exactly constant
    (no noise at all) for >= 40 ms.  Everything from the first such stretch in the last 1.5 s to the end
    (and symmetrically at the start) is cut.
    """
    a = as_2d(x)
    n = a.shape[0]
    if n < int(2 * fs) or a.shape[1] < 2:
        return 0, n
    still = np.concatenate([[False], (np.abs(np.diff(a, axis=0)) < 1e-9).all(axis=1)])
    run = max(int(min_flat_s * fs), 2)
    c = np.convolve(still.astype(np.int32), np.ones(run, dtype=np.int32), mode="valid")
    flat_start = np.flatnonzero(c == run)
    edge = int(1.5 * fs)
    stop = n
    tail = flat_start[flat_start >= n - edge]
    if len(tail):
        stop = int(tail[0])
    start = 0
    head = flat_start[flat_start + run <= edge]
    if len(head):
        start = int(head[-1]) + run
    return (start, stop) if stop - start >= int(fs) else (0, n)
