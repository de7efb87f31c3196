"""Rhythm: sinus / brady / tachy, atrial fibrillation or flutter, paced, pauses, ventricular runs, AV block.

AF evidence combines RR irregularity that survives isolated ectopy (median absolute successive RR
difference relative to the median RR, and the fraction of successive changes > 10 %) with the absence of a
consistent P wave on the median beat; a template-correlation signal-quality index keeps noise-driven
irregularity from being called AF.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

AF_MADSD = 0.085  # median |dRR| / median RR above which the rhythm is irregularly irregular
AF_PCHANGE = 0.45  # fraction of successive RR changes > 10 %
SQI_MIN = 0.6  # fraction of beats matching the dominant template needed to trust the RR series


@dataclass
class Episode:
    kind: str  # "pause", "vt_run", "ventricular_run", "af"
    start_s: float
    end_s: float
    beats: int = 0
    rate_bpm: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class RhythmResult:
    rhythm: str  # sinus, sinus_bradycardia, sinus_tachycardia, atrial_fibrillation, paced, ...
    label: str  # CinC-style N / A / O / ~
    hr_bpm: float | None
    irregularity: dict[str, float]
    sqi: float
    p_wave: bool | None
    af: bool
    episodes: list[Episode] = field(default_factory=list)
    longest_pause_s: float = 0.0
    av_block_3: bool = False

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["episodes"] = [e.to_dict() for e in self.episodes]
        return d


def irregularity(rr_ms: np.ndarray) -> dict[str, float]:
    rr = np.asarray(rr_ms, dtype=float)
    if len(rr) < 3:
        return {"madsd": 0.0, "pchange": 0.0, "cov": 0.0, "nrmssd": 0.0}
    d = np.diff(rr)
    med = float(np.median(rr))
    return {
        "madsd": round(float(np.median(np.abs(d)) / med), 4),
        "pchange": round(float(np.mean(np.abs(d) > 0.1 * med)), 3),
        "cov": round(float(np.std(rr) / np.mean(rr)), 4),
        "nrmssd": round(float(np.sqrt(np.mean(d**2)) / np.mean(rr)), 4),
    }


def is_af(
    irr: dict[str, float], p_wave: bool | None, sqi: float, n_beats: int, p_consistency: float | None = None
) -> bool:
    """Irregularly irregular RR on a trustworthy beat series.  A P wave shared by every beat vetoes moderate
    irregularity (sinus arrhythmia, wandering pacemaker); marked irregularity is AF whatever the median beat
    shows before the QRS (fibrillatory waves can average into a P-like bump)."""
    if n_beats < 8 or sqi < SQI_MIN:
        return False
    irregular = irr["madsd"] > AF_MADSD and irr["pchange"] > AF_PCHANGE
    very_irregular = irr["madsd"] > 2 * AF_MADSD and irr["pchange"] > 0.6
    sinus_p = bool(p_wave) and (p_consistency is None or p_consistency >= 0.85)
    return bool((irregular and not sinus_p) or very_irregular)


def find_pauses(beats: np.ndarray, fs: float, min_s: float = 2.0, offset_s: float = 0.0) -> list[Episode]:
    b = np.asarray(beats, dtype=np.int64)
    out: list[Episode] = []
    if len(b) < 2:
        return out
    rr = np.diff(b) / fs
    for i in np.flatnonzero(rr >= min_s):
        out.append(Episode("pause", offset_s + b[i] / fs, offset_s + b[i + 1] / fs, 0, None))
    return out


def ventricular_runs(
    labels: list[str], beats: np.ndarray, fs: float, min_beats: int = 3, offset_s: float = 0.0
) -> list[Episode]:
    """Runs of >= 3 consecutive V beats; runs at >= 100 bpm are ventricular tachycardia ("vt_run")."""
    out: list[Episode] = []
    b = np.asarray(beats, dtype=np.int64)
    i = 0
    n = len(labels)
    while i < n:
        if labels[i] != "V":
            i += 1
            continue
        j = i
        while j + 1 < n and labels[j + 1] == "V":
            j += 1
        k = j - i + 1
        if k >= min_beats:
            rate = 60.0 * (k - 1) / max((b[j] - b[i]) / fs, 1e-6)
            kind = "vt_run" if rate >= 100 else "ventricular_run"
            out.append(Episode(kind, offset_s + b[i] / fs, offset_s + b[j] / fs, k, round(rate, 0)))
        i = j + 1
    return out


def classify_rhythm(
    beats: np.ndarray,
    fs: float,
    labels: list[str],
    sqi: float,
    p_wave: bool | None,
    duration_s: float,
    qrs_ms: float | None = None,
    p_rate_bpm: float | None = None,
    good_beats: np.ndarray | None = None,
    p_consistency: float | None = None,
    n_leads: int = 12,
    af_sqi: float | None = None,
) -> RhythmResult:
    """Overall rhythm of a (short) record from its beats, beat labels and P-wave finding."""
    b = np.asarray(beats, dtype=np.int64)
    rr = np.diff(b) / fs * 1000.0
    n = len(b)
    lab = list(labels)
    # RR irregularity from intervals between non-ventricular beats (ectopy is not fibrillation)
    good = np.ones(n, dtype=bool) if good_beats is None else np.asarray(good_beats, dtype=bool)
    keep = (
        np.asarray(
            [lab[i] not in "VQ" and lab[i + 1] not in "VQ" and good[i] and good[i + 1] for i in range(n - 1)],
            dtype=bool,
        )
        if n > 1
        else np.zeros(0, dtype=bool)
    )
    rr_sv = rr[keep] if n > 1 and np.sum(keep) >= 6 else rr
    irr = irregularity(rr_sv)
    hr = 60000.0 / float(np.median(rr)) if len(rr) else None
    pauses = find_pauses(b, fs)
    runs = ventricular_runs(lab, b, fs)
    longest = max((e.end_s - e.start_s for e in pauses), default=0.0)
    if n >= 2:
        longest = max(longest, float(rr.max()) / 1000.0)
    noisy = sqi < 0.5 or (n < 2 and duration_s >= 5)
    af_q = sqi if af_sqi is None else af_sqi
    af = is_af(irr, p_wave, af_q, int(np.sum(keep)) + 1 if n > 1 else n, p_consistency) and not noisy
    paced_frac = lab.count("P") / n if n else 0.0
    v_frac = lab.count("V") / n if n else 0.0
    av3 = False
    if p_rate_bpm and hr and not p_wave and not af:
        # regular atrial waves faster than, and dissociated from, a slow regular ventricular rhythm
        av3 = p_rate_bpm > 1.5 * hr and hr < 50 and irr["madsd"] < 0.08
    if noisy:
        rhythm, label = "undetermined_noise", "~"
    elif n < 2:
        rhythm, label = ("asystole" if duration_s >= 3 else "undetermined"), "O"
    elif paced_frac > 0.5:
        rhythm, label = "paced", "O"
    elif af:
        rhythm, label = "atrial_fibrillation", "A"
    elif (
        any(e.kind == "vt_run" and e.beats >= 30 for e in runs)
        or (v_frac > 0.8 and hr and hr >= 100)
        # regular wide-complex tachycardia without P waves: ventricular until proven otherwise
        or (hr is not None and hr >= 120 and qrs_ms is not None and qrs_ms >= 120 and not p_wave and n_leads >= 3)
    ):
        rhythm, label = "ventricular_tachycardia", "O"
    elif av3:
        rhythm, label = "third_degree_av_block", "O"
    elif hr is not None and hr < 60:
        rhythm, label = ("sinus_bradycardia" if p_wave else "bradycardia"), ("N" if hr >= 50 and p_wave else "O")
    elif hr is not None and hr > 100:
        rhythm, label = ("sinus_tachycardia" if p_wave else "tachycardia"), "O"
    else:
        rhythm, label = ("sinus_rhythm" if p_wave is not False else "regular_rhythm_no_p"), "N"
    if label == "N":
        ectopic = sum(1 for c in lab if c in ("S", "V")) / max(n, 1)
        wide = qrs_ms is not None and qrs_ms >= 130 and n_leads >= 3  # single-lead widths are not reliable
        if ectopic > 0.1 or wide or runs or p_wave is False:
            label = "O"
    return RhythmResult(
        rhythm=rhythm,
        label=label,
        hr_bpm=round(hr, 1) if hr else None,
        irregularity=irr,
        sqi=round(sqi, 3),
        p_wave=p_wave,
        af=af,
        episodes=pauses + runs,
        longest_pause_s=round(longest, 3),
        av_block_3=av3,
    )
