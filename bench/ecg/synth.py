"""Scenario traces for the critical-value tests and benchmark, built from a real 12-lead beat (LUDB record 2).

The median beat of the real record is split into its P wave and its QRS-T; rhythms are then laid out by
placing those parts at chosen times (P and QRS-T independently for AV dissociation), stretching the QRS for a
wide-complex rhythm, delaying the T wave for a long QT, or lifting the ST segment in chosen leads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from bench.ecg.data import load_ludb
from services.ecg.analysis.filters import diagnostic_filter
from services.ecg.analysis.intervals import delineate, median_beat
from services.ecg.analysis.qrs import detect_qrs

FS = 500.0
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@dataclass
class Trace:
    fs: float
    lead_names: list[str]
    signal_mv: np.ndarray
    meta: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class BeatParts:
    p: np.ndarray  # P wave (samples x 12), ends at QRS onset - 10 ms
    qrst: np.ndarray  # QRS onset - 10 ms .. T end + 60 ms
    qrs_len: int  # samples from qrst start to QRS end
    t_start: int  # samples from qrst start to T-wave start (ST segment end)


def _taper(a: np.ndarray, edge: int) -> np.ndarray:
    w = np.ones(a.shape[0])
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, edge))
    w[:edge] = ramp
    w[-edge:] = ramp[::-1]
    return a * w[:, None]


@lru_cache(maxsize=1)
def parts() -> BeatParts:
    r = load_ludb("2")
    xf = diagnostic_filter(r.signal_mv, r.fs)
    mb = median_beat(xf, r.fs, detect_qrs(r.signal_mv, r.fs))
    f = delineate(mb)
    ms = r.fs / 1000.0
    assert f["p_on"] is not None and f["qrs_on"] is not None and f["t_end"] is not None
    cut = f["qrs_on"] - int(10 * ms)
    t = mb.template - mb.template[cut]  # PR-segment level as zero: the parts join without a step
    p = _taper(t[f["p_on"] - int(40 * ms) : cut], int(10 * ms))
    qrst = _taper(t[cut : min(f["t_end"] + int(60 * ms), t.shape[0])], int(10 * ms))
    qrs_off = f["qrs_off"] if f["qrs_off"] is not None else f["qrs_on"] + int(50 * ms)
    return BeatParts(p, qrst, qrs_off - cut, qrs_off - cut + int(30 * ms))


def _noise(n: int, rng: np.random.Generator, level: float = 0.008) -> np.ndarray:
    base = rng.normal(0, level, (n, 12))
    t = np.arange(n)[:, None] / FS
    return base + 0.03 * np.sin(2 * np.pi * 0.2 * t + rng.uniform(0, 6, 12)[None, :])


def _place(sig: np.ndarray, part: np.ndarray, at: int) -> None:
    a, b = max(at, 0), min(at + part.shape[0], sig.shape[0])
    if b > a:
        sig[a:b] += part[a - at : b - at]


def build(
    seconds: float,
    qrs_times: list[float],
    p_times: list[float] | None = None,
    qrst: np.ndarray | None = None,
    seed: int = 1,
    noise: float = 0.008,
) -> Trace:
    """QRS-T complexes starting at `qrs_times`, P waves ending at `p_times` (default: one before each QRS)."""
    bp = parts()
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    sig = _noise(n, rng, noise)
    q = bp.qrst if qrst is None else qrst
    p_ends = qrs_times if p_times is None else p_times
    for t in p_ends:
        _place(sig, bp.p, int(t * FS) - bp.p.shape[0])
    for t in qrs_times:
        _place(sig, q, int(t * FS))
    return Trace(FS, list(LEADS), sig)


def regular(seconds: float, hr: float, start: float = 0.4) -> list[float]:
    return list(np.arange(start, seconds - 0.8, 60.0 / hr))


def wide_qrst(factor: float = 2.4, invert: bool = True) -> np.ndarray:
    """QRS stretched in time (wide, ventricular-looking), T wave kept, polarity inverted."""
    bp = parts()
    q = bp.qrst[: bp.qrs_len]
    idx = np.linspace(0, q.shape[0] - 1, int(q.shape[0] * factor))
    wide = np.stack([np.interp(idx, np.arange(q.shape[0]), q[:, k]) for k in range(12)], axis=1)
    rest = bp.qrst[bp.qrs_len :]
    out = np.concatenate([wide, rest])
    return -out if invert else out


def long_qt_qrst(extra_ms: float = 160.0) -> np.ndarray:
    """The T wave delayed by `extra_ms` (isoelectric ST inserted)."""
    bp = parts()
    pad = np.zeros((int(extra_ms * FS / 1000), 12))
    lvl = bp.qrst[bp.t_start]
    pad += lvl
    return np.concatenate([bp.qrst[: bp.t_start], pad, bp.qrst[bp.t_start :]])


def st_elevated_qrst(leads: tuple[str, ...], mv: float = 0.35) -> np.ndarray:
    """ST segment lifted by `mv` from the J point into the T wave in the given leads (acute injury current)."""
    bp = parts()
    q = bp.qrst.copy()
    n = q.shape[0]
    rise = int(0.03 * FS)  # the injury current lifts the end of the QRS: the J point itself is elevated
    j = bp.qrs_len - rise
    shape = np.zeros(n)
    shape[j : j + rise] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, rise))
    shape[j + rise :] = 1.0
    t_end = n - int(0.06 * FS)  # the elevation merges into the T wave and is gone by its end
    fall = int(0.15 * FS)
    shape[t_end - fall : t_end] = np.linspace(1, 0, fall)
    shape[t_end:] = 0.0
    for lead in leads:
        q[:, LEADS.index(lead)] += mv * shape
    return q


def vf(seconds: float = 10.0, seed: int = 3) -> Trace:
    """Coarse ventricular fibrillation: 4-6 Hz oscillation of wandering amplitude and frequency."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    t = np.arange(n) / FS
    sig = np.zeros((n, 12))
    for k in range(12):
        f = 5.0 + 0.6 * np.sin(2 * np.pi * 0.15 * t + rng.uniform(0, 6))
        phase = 2 * np.pi * np.cumsum(f) / FS + rng.uniform(0, 6)
        amp = 0.6 + 0.3 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6))
        sig[:, k] = amp * np.sin(phase) * rng.uniform(0.6, 1.2)
    return Trace(FS, list(LEADS), sig + rng.normal(0, 0.01, sig.shape))


def af(seconds: float, mean_hr: float, seed: int = 5) -> Trace:
    """Atrial fibrillation: irregularly irregular QRS-T without P waves, small fibrillatory waves."""
    rng = np.random.default_rng(seed)
    mean_rr = 60.0 / mean_hr
    times, t = [], 0.3
    while t < seconds - 0.6:
        times.append(t)
        t += float(rng.uniform(0.65, 1.35) * mean_rr)
    tr = build(seconds, times, p_times=[], seed=seed)
    n = tr.signal_mv.shape[0]
    tt = np.arange(n) / FS
    f_waves = 0.05 * np.sin(2 * np.pi * (6.0 + 0.5 * np.sin(2 * np.pi * 0.4 * tt)) * tt)
    tr.signal_mv[:, 6:9] += f_waves[:, None]
    return tr


def emg_noise(trace: Trace, rms_mv: float = 0.25, seed: int = 9) -> Trace:
    """Heavy muscle noise plus motion spikes over a trace (an uninterpretable recording)."""
    rng = np.random.default_rng(seed)
    x = trace.signal_mv + rng.normal(0, rms_mv, trace.signal_mv.shape)
    for _ in range(12):
        at = int(rng.uniform(0, x.shape[0] - 200))
        x[at : at + 150] += rng.normal(0, 1.5, (150, 12)).cumsum(axis=0) * 0.05
    return Trace(trace.fs, trace.lead_names, x)


def qrst_at(hr: float, source_hr: float = 66.0) -> np.ndarray:
    """QRS-T with the ST-T part shortened for the rate (QT ~ sqrt(RR), as Bazett)."""
    bp = parts()
    q = bp.qrst[: bp.qrs_len]
    stt = bp.qrst[bp.qrs_len :]
    k = float(np.sqrt(source_hr / hr))
    idx = np.linspace(0, stt.shape[0] - 1, max(int(stt.shape[0] * k), 2))
    st = np.stack([np.interp(idx, np.arange(stt.shape[0]), stt[:, c]) for c in range(12)], axis=1)
    return np.concatenate([q, st])


def with_leads_off(trace: Trace, n: int) -> Trace:
    x = trace.signal_mv.copy()
    x[:, :n] = 0.0
    return Trace(trace.fs, trace.lead_names, x)


def motion_on_limb_leads(trace: Trace, seed: int = 4) -> Trace:
    rng = np.random.default_rng(seed)
    x = trace.signal_mv.copy()
    x[:, :6] += rng.normal(0, 1.0, (x.shape[0], 6)).cumsum(axis=0) * 0.05
    x[:, :6] += rng.normal(0, 0.3, (x.shape[0], 6))
    return Trace(trace.fs, trace.lead_names, x)


# name -> (expected critical code or None, trace factory)
SCENARIOS: dict[str, tuple[str | None, Callable[[], Trace]]] = {
    "ventricular tachycardia 165/min": ("vf_vt", lambda: build(10, regular(10, 165), p_times=[], qrst=wide_qrst())),
    "ventricular fibrillation": ("vf_vt", lambda: vf()),
    "pause 4.8 s": ("asystole_pause", lambda: build(10, [0.4, 1.2, 2.0, 2.8, 7.6, 8.4])),
    "sinus bradycardia 35/min": ("bradycardia", lambda: build(12, regular(12, 35))),
    "tachycardia 190/min": ("tachycardia", lambda: build(10, regular(10, 190), qrst=qrst_at(190))),
    "AF 165/min": ("af_rvr", lambda: af(10, 165)),
    "complete AV block (A 80, V 36)": (
        "av_block_3",
        lambda: build(15, regular(15, 36, 0.9), p_times=regular(15, 80, 0.25)),
    ),
    "anterior STEMI (V2-V4 +0.35 mV)": (
        "stemi",
        lambda: build(10, regular(10, 62), qrst=st_elevated_qrst(("V2", "V3", "V4"))),
    ),
    "long QT (QTc ~600 ms)": ("qtc_prolonged", lambda: build(10, regular(10, 62), qrst=long_qt_qrst(170))),
    "normal sinus 72/min": (None, lambda: build(10, regular(10, 72))),
    "AF 85/min (controlled)": (None, lambda: af(10, 85)),
    "sinus tachycardia 150/min": (None, lambda: build(10, regular(10, 150), qrst=qrst_at(150))),
    "muscle noise + motion spikes": (None, lambda: emg_noise(build(10, regular(10, 72)))),
    "motion artefact on 6 leads": (None, lambda: motion_on_limb_leads(build(10, regular(10, 72)))),
    "all leads off": (None, lambda: with_leads_off(build(10, regular(10, 72)), 12)),
    "6 leads off": (None, lambda: with_leads_off(build(10, regular(10, 72)), 6)),
}
