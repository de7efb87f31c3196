"""Holter and other long records: chunked analysis with bounded memory.

`analyze_long(chunks, fs, lead_names)` consumes any iterable of samples x leads arrays (e.g. the formats
package's ``iter_chunks``), re-blocks them into 60-s windows with 1 s of context before each, analyses every
window with the beat template carried over, and keeps only running aggregates: beat counts by class, the
heart-rate trend (one point per window), AF burden, the longest pause (including pauses that straddle
windows), ventricular runs and critical findings with their time.  Memory is O(window + trend).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from services.ecg.analysis.beats import Template
from services.ecg.analysis.critical import PAUSE_S
from services.ecg.analysis.filters import as_2d, resample
from services.ecg.analysis.models import Analysis, CriticalFinding
from services.ecg.analysis.pipeline import ANALYSIS_FS_MAX, analyze_window
from services.ecg.analysis.statements import interpret

WINDOW_S = 60.0
CONTEXT_S = 1.0
MAX_EPISODES = 2000


class _Acc:
    """Running aggregates over windows."""

    def __init__(self) -> None:
        self.counts = {k: 0 for k in ("N", "S", "V", "P", "Q")}
        self.trend: list[tuple[float, float | None]] = []
        self.af_s = 0.0
        self.analysed_s = 0.0
        self.noisy_s = 0.0
        self.longest_pause = 0.0
        self.longest_pause_at: float | None = None
        self.episodes: list[dict[str, Any]] = []
        self.critical: dict[str, CriticalFinding] = {}
        self.last_beat_s: float | None = None
        self.best: tuple[float, Analysis] | None = None  # cleanest window: its intervals / ST represent the record
        self.rhythms: dict[str, float] = {}
        self.usable_s: dict[str, float] = {}
        self.n_beats = 0

    def add(self, a: Analysis, t0: float, dur: float) -> None:
        fs = a.fs
        beats = [t0 + s / fs for s in a.beats.get("samples", [])]
        if self.last_beat_s is not None and beats:
            gap = beats[0] - self.last_beat_s
            if gap > self.longest_pause:
                self.longest_pause, self.longest_pause_at = gap, self.last_beat_s
        if beats:
            self.last_beat_s = beats[-1]
        for k, v in a.beats.get("counts", {}).items():
            self.counts[k] = self.counts.get(k, 0) + int(v)
        self.n_beats += len(beats)
        self.trend.append((round(t0, 1), a.rr.get("hr_bpm")))
        self.analysed_s += dur
        rh = a.rhythm
        self.rhythms[rh["rhythm"]] = self.rhythms.get(rh["rhythm"], 0.0) + dur
        if rh.get("af"):
            self.af_s += dur
        if rh["rhythm"] == "undetermined_noise":
            self.noisy_s += dur
        pause = float(rh.get("longest_pause_s", 0.0))
        if pause > self.longest_pause and len(beats) >= 2:
            self.longest_pause, self.longest_pause_at = pause, t0
        for e in rh.get("episodes", []):
            if len(self.episodes) < MAX_EPISODES:
                self.episodes.append(e | {"start_s": round(t0 + e["start_s"], 2), "end_s": round(t0 + e["end_s"], 2)})
        for f in a.critical:
            if f.code not in self.critical:
                f.at_s = round(t0 + (f.at_s or 0.0), 1)
                self.critical[f.code] = f
        for lead in a.quality.get("usable_leads", []):
            self.usable_s[lead] = self.usable_s.get(lead, 0.0) + dur
        sqi = float(rh.get("sqi", 0.0))
        if a.intervals and (self.best is None or sqi > self.best[0] + 0.02):
            self.best = (sqi, a)


def _windows(chunks: Iterable[np.ndarray], fs: float, win: int, ctx: int) -> Iterable[tuple[int, np.ndarray]]:
    """Yield (start sample of the window proper, context + window samples) from arbitrary chunks."""
    buf: list[np.ndarray] = []
    have = 0
    start = 0  # absolute sample index of buf[0][0]
    for ch in chunks:
        a = np.nan_to_num(as_2d(np.asarray(ch, dtype=np.float64)))
        buf.append(a)
        have += a.shape[0]
        while have >= (ctx if start else 0) + win:
            data = np.concatenate(buf) if len(buf) > 1 else buf[0]
            lead = ctx if start else 0
            yield start + lead, data[: lead + win]
            keep_from = lead + win - ctx
            rest = data[keep_from:]
            start += keep_from
            buf, have = [rest], rest.shape[0]
    if buf:
        data = np.concatenate(buf) if len(buf) > 1 else buf[0]
        lead = ctx if start else 0
        if data.shape[0] - lead >= int(3 * fs):
            yield start + lead, data


def analyze_long(
    chunks_iter: Iterable[np.ndarray],
    fs: float,
    lead_names: list[str],
    sex: str | None = None,
    age: float | None = None,
    window_s: float = WINDOW_S,
    on_window: Callable[[float, Analysis], None] | None = None,
) -> Analysis:
    """Chunked analysis of a long record. `chunks_iter` yields samples x leads arrays in mV at `fs`.

    `on_window(t0_s, window_analysis)` is called for every window (beats relative to t0, at the analysis
    rate), e.g. to store beat annotations; the returned summary itself keeps no per-beat data."""
    names = [str(n) for n in lead_names]
    afs = min(float(fs), ANALYSIS_FS_MAX)
    win, ctx = int(window_s * fs), int(CONTEXT_S * fs)
    acc = _Acc()
    template: Template | None = None
    total_s = 0.0
    for start, data in _windows(chunks_iter, float(fs), win, ctx):
        if data.shape[1] != len(names):
            raise ValueError(f"chunk has {data.shape[1]} leads, expected {len(names)}")
        lead = ctx if start > 0 else 0
        x = resample(data, fs, afs) if afs != fs else data
        try:
            a, template = analyze_window(x, afs, names, sex, age, template)
        except ValueError:
            continue
        # keep the beats of the window proper (the context second belongs to the previous window)
        lead_a = round(lead * afs / fs)
        keep = [i for i, s in enumerate(a.beats["samples"]) if s >= lead_a]
        a.beats["samples"] = [a.beats["samples"][i] - lead_a for i in keep]
        a.beats["labels"] = [a.beats["labels"][i] for i in keep]
        a.beats["counts"] = {k: a.beats["labels"].count(k) for k in ("N", "S", "V", "P", "Q")}
        dur = (data.shape[0] - lead) / fs
        t0 = start / fs
        for e in a.rhythm.get("episodes", []):
            e["start_s"] -= lead / fs
            e["end_s"] -= lead / fs
        acc.add(a, t0, dur)
        if on_window is not None:
            on_window(t0, a)
        total_s = t0 + dur
    if acc.analysed_s == 0:
        raise ValueError("no analysable window in the record (too short or empty)")
    return _summarise(acc, afs, names, total_s)


def _summarise(acc: _Acc, fs: float, names: list[str], total_s: float) -> Analysis:
    hrs = [h for _t, h in acc.trend if h is not None]
    best = acc.best[1] if acc.best else None
    main = max(acc.rhythms.items(), key=lambda kv: kv[1])[0] if acc.rhythms else "undetermined"
    af_burden = round(acc.af_s / acc.analysed_s, 4)
    noisy_fraction = round(acc.noisy_s / acc.analysed_s, 4)
    summary: dict[str, Any] = {
        "duration_s": round(total_s, 1),
        "analysed_s": round(acc.analysed_s, 1),
        "beats_total": acc.n_beats,
        "beat_counts": acc.counts,
        "ectopic": {"supraventricular": acc.counts.get("S", 0), "ventricular": acc.counts.get("V", 0)},
        "hr_trend": [{"t_s": t, "hr_bpm": h} for t, h in acc.trend],
        "hr_mean_bpm": round(float(np.mean(hrs)), 1) if hrs else None,
        "hr_min_bpm": round(float(np.min(hrs)), 1) if hrs else None,
        "hr_max_bpm": round(float(np.max(hrs)), 1) if hrs else None,
        "af_burden": af_burden,
        "longest_pause_s": round(acc.longest_pause, 3),
        "longest_pause_at_s": round(acc.longest_pause_at, 1) if acc.longest_pause_at is not None else None,
        "noisy_fraction": noisy_fraction,
        "ventricular_runs": sum(1 for e in acc.episodes if e["kind"] in ("vt_run", "ventricular_run")),
        "rhythm_seconds": {k: round(v, 1) for k, v in acc.rhythms.items()},
    }
    quality = {
        "overall": "good" if noisy_fraction < 0.1 else "fair" if noisy_fraction < 0.5 else "poor",
        "usable_leads": [n for n in names if acc.usable_s.get(n, 0) > 0.5 * acc.analysed_s],
        "n_usable": sum(1 for n in names if acc.usable_s.get(n, 0) > 0.5 * acc.analysed_s),
        "usable_fraction": {n: round(acc.usable_s.get(n, 0.0) / acc.analysed_s, 3) for n in names},
        "leads": [],
    }
    rhythm = {
        "rhythm": main,
        "af": af_burden > 0.5,
        "af_burden": summary["af_burden"],
        "longest_pause_s": summary["longest_pause_s"],
        "episodes": acc.episodes,
        "sqi": acc.best[0] if acc.best else 0.0,
        "vf_seconds": 0.0,
    }
    rr = {
        "hr_bpm": summary["hr_mean_bpm"],
        "hr_min_bpm": summary["hr_min_bpm"],
        "hr_max_bpm": summary["hr_max_bpm"],
        "n_beats": float(acc.n_beats),
    }
    a = Analysis(
        fs,
        round(total_s, 3),
        names,
        quality,
        {"count": acc.n_beats, "samples": [], "labels": [], "counts": acc.counts},
        rr,
        best.intervals if best else {},
        rhythm,
        best.st if best else {},
        best.stemi if best else {"flag": False, "assessable": False},
        summary=summary,
    )
    if acc.longest_pause > PAUSE_S and "asystole_pause" not in acc.critical and "vf_vt" not in acc.critical:
        p = acc.longest_pause  # a pause that straddles two windows
        acc.critical["asystole_pause"] = CriticalFinding(
            "asystole_pause",
            f"Pause of {p:.1f} s",
            f"长间歇 {p:.1f} 秒",
            round(p, 2),
            "s",
            {"longest_pause_s": round(p, 2)},
            round(acc.longest_pause_at or 0.0, 1),
        )
    a.critical = sorted(acc.critical.values(), key=lambda f: f.at_s or 0.0)
    a.statements = interpret(a)
    return a
