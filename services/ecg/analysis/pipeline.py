"""`analyze(recording) -> Analysis`: the whole resting / short-record analysis in one pure function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from services.ecg.analysis.beats import BeatResult, Template, classify_beats, rr_statistics
from services.ecg.analysis.critical import critical_values
from services.ecg.analysis.filters import (
    as_2d,
    diagnostic_filter,
    quality_and_segments,
    resample,
    segment_usability,
    trim_calibration,
)
from services.ecg.analysis.intervals import MedianBeat, delineate, measure_from_median, median_beat, p_wave_consistency
from services.ecg.analysis.models import Analysis, RecordingLike
from services.ecg.analysis.pace import blank_spikes, detect_pacing_spikes, paced_beats
from services.ecg.analysis.qrs import detect_qrs
from services.ecg.analysis.rhythm import classify_rhythm
from services.ecg.analysis.st import st_deviation, stemi_pattern
from services.ecg.analysis.statements import interpret
from services.ecg.analysis.vf import atrial_rate, vf_windows

ANALYSIS_FS_MAX = 500.0
MIN_SECONDS = 2.5
_SEG_S = 2.0
P_CONSISTENCY_MIN = 0.3


def unpack(recording: RecordingLike | Any) -> tuple[np.ndarray, float, list[str]]:
    """(samples x leads float array, fs, lead names) from anything with fs, lead_names, signal_mv."""
    try:
        fs = float(recording.fs)
        x = as_2d(np.asarray(recording.signal_mv, dtype=np.float64))
        names = [str(n) for n in recording.lead_names]
    except AttributeError as e:
        raise ValueError("recording needs fs, lead_names and signal_mv") from e
    if len(names) != x.shape[1]:
        raise ValueError(f"{x.shape[1]} leads in signal_mv but {len(names)} lead names")
    if not np.isfinite(fs) or fs < 50:
        raise ValueError(f"sampling rate {fs} Hz is not usable (< 50 Hz)")
    if x.shape[0] < int(MIN_SECONDS * fs):
        raise ValueError(f"recording too short: {x.shape[0] / fs:.2f} s (at least {MIN_SECONDS} s needed)")
    return x, fs, names


@dataclass
class Core:
    """Intermediate results shared by `analyze` and the chunked long-record analysis."""

    fs: float
    beats: np.ndarray
    beat_res: BeatResult
    sqi: float  # fraction of clean beats (dominant morphology, or a consistent ectopic one)
    sqi_strict: float  # fraction matching the dominant template: what an RR-irregularity verdict needs
    usable_idx: list[int]
    xf: np.ndarray
    mb: MedianBeat | None
    fid: dict[str, int | None]
    vf_seconds: float


def core(
    x: np.ndarray,
    fs: float,
    usable: list[bool],
    template: Template | None = None,
    seg_ok: np.ndarray | None = None,
) -> Core:
    idx = [i for i, ok in enumerate(usable) if ok]
    xu = x[:, idx]
    spikes = detect_pacing_spikes(xu, fs)
    xb = blank_spikes(xu, fs, spikes) if len(spikes) else xu
    beats = detect_qrs(xb, fs)
    xf = diagnostic_filter(xb, fs)
    seg_any: np.ndarray = np.asarray(
        (segment_usability(xu, fs, _SEG_S) if seg_ok is None else seg_ok[:, idx]).any(axis=1), dtype=bool
    )
    seg_of = np.minimum(beats // int(_SEG_S * fs), len(seg_any) - 1) if len(seg_any) else np.zeros(0, dtype=int)
    unusable = ~seg_any[seg_of] if len(seg_any) else None
    res = classify_beats(xf, fs, beats, paced=paced_beats(beats, spikes, fs), unusable=unusable, template=template)
    clean = res.features.clean
    sqi = float(np.mean(clean)) if len(clean) else 0.0
    sqi_strict = float(np.mean(res.features.corr > 0.8)) if len(clean) else 0.0
    mb: MedianBeat | None = None
    fid: dict[str, int | None] = {}
    if len(beats) >= 2:
        keep = np.isin(np.asarray(res.labels), ["N", "P"]) if res.labels else None
        mb = median_beat(xf, fs, beats, keep=keep if keep is not None and keep.sum() >= 2 else None)
        fid = delineate(mb)
    vf = vf_windows(xu, fs)
    return Core(fs, beats, res, sqi, sqi_strict, idx, xf, mb, fid, float(vf.sum() * 4.0))


def analyze(recording: RecordingLike | Any, sex: str | None = None, age: float | None = None) -> Analysis:
    """Full analysis of a recording (any object with fs, lead_names, signal_mv in mV, samples x leads)."""
    x, fs, names = unpack(recording)
    x = np.nan_to_num(x)
    n0 = x.shape[0]
    start, stop = trim_calibration(x, fs)  # a cart's calibration pulse is not a heartbeat
    x = x[start:stop]
    fs_in = fs
    if fs > ANALYSIS_FS_MAX:  # 2 ms resolution is ample for every measurement; halves the work at 1 kHz
        x = resample(x, fs, ANALYSIS_FS_MAX)
        fs = ANALYSIS_FS_MAX
    a = analyze_array(x, fs, names, sex=sex, age=age)
    if start or stop < n0:
        off = round(start * fs / fs_in)
        a.beats["samples"] = [s + off for s in a.beats["samples"]]
        a.quality["analysed_span_s"] = [round(start / fs_in, 3), round(stop / fs_in, 3)]
    return a


def _quality_summary(x: np.ndarray, fs: float, names: list[str]) -> tuple[dict[str, Any], list[bool], np.ndarray]:
    lq, seg_ok = quality_and_segments(x, fs, names)
    usable = [q.usable for q in lq]
    n_usable = sum(usable)
    overall = "good" if n_usable == len(usable) else ("fair" if n_usable >= max(1, len(usable) // 2) else "poor")
    if n_usable == 0:
        overall = "unusable"
    return (
        {
            "overall": overall,
            "usable_leads": [n for n, ok in zip(names, usable, strict=True) if ok],
            "n_usable": n_usable,
            "leads": [q.to_dict() for q in lq],
            "lead_off_any_all": all(q.lead_off or q.flat_line for q in lq),
        },
        usable,
        seg_ok,
    )


def analyze_array(
    x: np.ndarray, fs: float, names: list[str], sex: str | None = None, age: float | None = None
) -> Analysis:
    """`analyze` on a samples x leads array already at the analysis rate."""
    return analyze_window(x, fs, names, sex, age)[0]


def analyze_window(
    x: np.ndarray,
    fs: float,
    names: list[str],
    sex: str | None = None,
    age: float | None = None,
    template: Template | None = None,
) -> tuple[Analysis, Template | None]:
    """One analysis window; also returns the dominant beat template to carry into the next window."""
    duration = x.shape[0] / fs
    quality, usable, seg_ok = _quality_summary(x, fs, names)
    empty_iv: dict[str, Any] = {}
    if not any(usable):
        a = Analysis(
            fs,
            round(duration, 3),
            names,
            quality,
            {"count": 0, "samples": [], "labels": [], "counts": {}},
            rr_statistics(np.zeros(0), fs),
            empty_iv,
            {"rhythm": "undetermined_noise", "label": "~", "sqi": 0.0, "episodes": [], "af": False},
            {},
            {"flag": False, "assessable": False, "reason": "no usable lead"},
        )
        a.statements = interpret(a)
        return a, template
    c = core(x, fs, usable, template=template, seg_ok=seg_ok)
    names_u = [names[i] for i in c.usable_idx]
    labels = list(c.beat_res.labels)
    iv: dict[str, Any] = measure_from_median(c.mb, names_u) if c.mb is not None else {}
    p_wave = iv.get("p_wave") if iv else None
    p_cons = p_wave_consistency(c.xf, c.beats, c.mb, c.fid) if (c.mb is not None and p_wave) else None
    if p_wave and p_cons is not None and p_cons < P_CONSISTENCY_MIN:
        p_wave = False  # a bump on the median beat that the single beats do not share: fibrillatory waves
        if iv:
            iv["p_wave"] = False
    if iv:
        iv["p_consistency"] = round(p_cons, 3) if p_cons is not None else None
    p_rate = pr_sd = None
    hr_med = 60.0 / float(np.median(np.diff(c.beats)) / fs) if len(c.beats) >= 3 else None
    if c.mb is not None and not p_wave and hr_med is not None and hr_med < 50:
        # slow ventricles without a P wave locked to the QRS: look for dissociated atrial activity
        p_rate, pr_sd = atrial_rate(c.xf, fs, c.beats, c.mb.template, c.mb.r, c.fid.get("qrs_on"), c.fid.get("t_end"))
    rh = classify_rhythm(
        c.beats,
        fs,
        labels,
        c.sqi,
        p_wave,
        duration,
        iv.get("qrs_ms"),
        p_rate if (pr_sd is not None and pr_sd > 60) else None,
        good_beats=c.beat_res.features.corr > 0.8,
        p_consistency=p_cons,
        n_leads=len(c.usable_idx),
        af_sqi=c.sqi_strict,
    )
    if rh.af:  # premature-looking intervals are the fibrillation itself, not supraventricular ectopy
        labels = ["N" if lab == "S" else lab for lab in labels]
    rhythm = rh.to_dict()
    rhythm["vf_seconds"] = c.vf_seconds
    rhythm["atrial_rate_bpm"] = round(p_rate, 0) if p_rate else None
    if c.vf_seconds >= 4.0 and c.sqi < 0.8:
        rhythm["rhythm"] = "ventricular_fibrillation"
    st = st_deviation(c.mb.template, fs, c.mb.r, c.fid, names_u) if c.mb is not None else {}
    # morphology (ST, QTc) rests on the median of the non-ectopic beats: judge their consistency only
    lab_arr = np.asarray(labels)
    sup = np.isin(lab_arr, ["N", "S", "P"]) if len(lab_arr) else np.zeros(0, dtype=bool)
    morph_sqi = float(np.mean(c.beat_res.features.corr[sup] > 0.8)) if sup.sum() >= 3 else 0.0
    if iv:
        iv["median_sqi"] = round(morph_sqi, 3)
    if morph_sqi >= 0.8 and len(c.beats) >= 3:
        stemi = stemi_pattern(st, iv.get("qrs_ms"), sex, age, paced=rh.rhythm == "paced").to_dict()
    else:
        stemi = {
            "flag": False,
            "assessable": False,
            "leads": [],
            "territories": [],
            "reason": "beats too inconsistent for ST assessment",
        }
    counts = {k: labels.count(k) for k in ("N", "S", "V", "P", "Q")}
    beats = {
        "count": len(c.beats),
        "samples": c.beats.tolist(),
        "labels": labels,
        "counts": counts,
        "template_sqi": round(c.sqi, 3),
    }
    a = Analysis(
        fs, round(duration, 3), names, quality, beats, rr_statistics(c.beats, fs, labels), iv, rhythm, st, stemi
    )
    a.critical = critical_values(a)
    a.statements = interpret(a)
    return a, c.beat_res.template
