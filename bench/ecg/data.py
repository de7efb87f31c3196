"""Loading the shared ECG development set (../shared/data/ecg) for the benchmark and the tests.

Uses ``services.ecg.formats.read`` where it fits once it exists; WFDB records go through ``wfdb`` directly
(the annotations need it anyway), CinC 2017 through ``scipy.io.loadmat`` (wfdb cannot parse their headers)
and the ISHNE Holter through the small reader below.
"""

from __future__ import annotations

import csv
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("ECG_DATA_DIR", REPO.parent / "shared" / "data" / "ecg"))

BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
QRS_RECORDS = ["mitdb/100", "mitdb/101", "mitdb/208", "svdb/800"]  # the target set (MIT-BIH + SVDB)
LUDB_RECORDS = ["1", "2", "8", "10", "13"]
LUDB_LEADS = ["i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6"]
STANDARD_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@dataclass
class Record:
    name: str
    fs: float
    lead_names: list[str]
    signal_mv: np.ndarray  # samples x leads
    beats: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # reference beat samples
    symbols: list[str] = field(default_factory=list)
    score_from: int = 0  # score only reference/detections inside [score_from, score_to)
    score_to: int | None = None
    dont_care: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def minutes(self) -> float:
        return self.signal_mv.shape[0] / self.fs / 60.0


def _std_lead(name: str) -> str:
    m = {n.lower(): n for n in STANDARD_LEADS}
    return m.get(name.lower(), name)


def load_wfdb(rel: str, channels: list[int] | None = None) -> Record:
    import wfdb

    path = str(DATA_DIR / rel)
    rec = wfdb.rdrecord(path, channels=channels)
    sig = np.asarray(rec.p_signal, dtype=np.float64)
    beats = np.zeros(0, dtype=np.int64)
    symbols: list[str] = []
    if (DATA_DIR / f"{rel}.atr").exists():
        ann = wfdb.rdann(path, "atr")
        keep = [i for i, s in enumerate(ann.symbol) if s in BEAT_SYMBOLS]
        beats = np.asarray(ann.sample, dtype=np.int64)[keep]
        symbols = [ann.symbol[i] for i in keep]
    return Record(
        name=rel.split("/")[-1],
        fs=float(rec.fs),
        lead_names=[_std_lead(n) for n in rec.sig_name],
        signal_mv=np.nan_to_num(sig),
        beats=beats,
        symbols=symbols,
        meta={"comments": rec.comments},
    )


def load_ishne(path: Path | None = None) -> Record:
    """ISHNE 1.0 Holter (+ .ann).  12 leads, int16 interleaved, resolution in nV per lead."""
    path = path or DATA_DIR / "formats" / "ishne" / "ECG_P28.01.ecg"
    b = path.read_bytes()
    _vbs, nsamp, _vbo, ecg_off, _ver = struct.unpack("<iiiih", b[10:28])
    off = 10 + 16 + 2 + 40 + 40 + 20 + 2 + 2 + 24
    (nleads,) = struct.unpack("<h", b[off : off + 2])
    spec = struct.unpack("<12h", b[off + 2 : off + 26])
    res = struct.unpack("<12h", b[off + 50 : off + 74])
    (fs,) = struct.unpack("<h", b[off + 116 : off + 118])
    raw = np.frombuffer(b, dtype="<i2", offset=ecg_off, count=nsamp * nleads).reshape(nsamp, nleads)
    sig = raw.astype(np.float64) * (np.asarray(res[:nleads], dtype=np.float64) * 1e-6)
    codes = {5: "I", 6: "II", 7: "III", 8: "aVR", 9: "aVL", 10: "aVF"} | {10 + i: f"V{i}" for i in range(1, 7)}
    names = [codes.get(int(c), f"ch{i}") for i, c in enumerate(spec[:nleads])]
    beats: list[int] = []
    symbols: list[str] = []
    dont_care: list[int] = []
    ann_path = path.with_suffix(".ann")
    if ann_path.exists():
        a = ann_path.read_bytes()
        (a_off,) = struct.unpack("<i", a[22:26])
        (pos,) = struct.unpack("<i", a[a_off : a_off + 4])
        for i in range(a_off + 4, len(a) - 3, 4):
            lab = chr(a[i])
            (dt,) = struct.unpack("<H", a[i + 2 : i + 4])
            pos += int(dt * fs / 1000)  # ISHNE annotation deltas are in ms
            if lab in BEAT_SYMBOLS:
                beats.append(pos)
                symbols.append(lab)
            else:
                dont_care.append(pos)
    return Record(
        name=path.stem,
        fs=float(fs),
        lead_names=names,
        signal_mv=sig,
        beats=np.asarray(beats, dtype=np.int64),
        symbols=symbols,
        dont_care=np.asarray(dont_care, dtype=np.int64),
    )


def load_ludb(rec_id: str) -> Record:
    """LUDB record with every lead's delineation in meta['delineation'][lead] = list of (kind, on, peak, off)."""
    import wfdb

    path = str(DATA_DIR / "ludb" / rec_id)
    rec = wfdb.rdrecord(path)
    waves: dict[str, list[tuple[str, int, int, int]]] = {}
    for lead in LUDB_LEADS:
        ann = wfdb.rdann(path, f"atr_{lead}")
        syms, samp = ann.symbol, ann.sample
        found: list[tuple[str, int, int, int]] = []
        for i, s in enumerate(syms):
            if s in ("p", "N", "t") and 0 < i < len(syms) - 1 and syms[i - 1] == "(" and syms[i + 1] == ")":
                found.append((s, int(samp[i - 1]), int(samp[i]), int(samp[i + 1])))
        waves[_std_lead(lead)] = found
    qrs = sorted({w[2] for w in waves["II"] if w[0] == "N"} | {w[2] for w in waves["I"] if w[0] == "N"})
    ref = np.asarray([w[2] for w in waves["I"] if w[0] == "N"], dtype=np.int64)
    marks_i = waves["I"]  # scored like the peers: lead I's own marks, inside its annotated span
    lo = min(w[1] for w in marks_i)
    hi = max(w[3] for w in marks_i)
    return Record(
        name=rec_id,
        fs=float(rec.fs),
        lead_names=[_std_lead(n) for n in rec.sig_name],
        signal_mv=np.nan_to_num(np.asarray(rec.p_signal, dtype=np.float64)),
        beats=ref,
        symbols=["N"] * len(ref),
        score_from=max(lo - int(0.1 * rec.fs), 0),
        score_to=hi + int(0.1 * rec.fs),
        meta={"delineation": waves, "qrs_any": qrs, "comments": rec.comments},
    )


def load_ptb() -> Record:
    rec = load_wfdb("ptb/s0010_re", channels=list(range(12)))
    return rec


def cinc_labels() -> dict[str, str]:
    with (DATA_DIR / "cinc2017" / "REFERENCE.csv").open() as fh:
        return {row[0]: row[1] for row in csv.reader(fh) if row}


def load_cinc(name: str) -> Record:
    from scipy.io import loadmat

    val = loadmat(str(DATA_DIR / "cinc2017" / f"{name}.mat"))["val"][0].astype(np.float64) / 1000.0
    return Record(name=name, fs=300.0, lead_names=["I"], signal_mv=val[:, None])


def qrs_records(include_ludb: bool = True, include_ishne: bool = True) -> list[Record]:
    """Every record that carries reference beats, in benchmark order."""
    recs = [load_wfdb(r) for r in QRS_RECORDS]
    if include_ludb:
        recs += [load_ludb(r) for r in LUDB_RECORDS]
    if include_ishne:
        recs.append(load_ishne())
    return recs


def ludb_reference_intervals(rec: Record, rank: int = 1) -> dict[str, float | None]:
    """Global reference intervals from LUDB's per-lead delineation: per beat the earliest onset and latest offset
    over the 12 leads (as the global measurement does), then the median over beats. Values in ms.

    rank=0 takes the strict extremes; rank=1 (default) the second earliest / second latest lead, so that one
    outlying lead annotation (the cardiologists marked each lead separately) does not set the reference."""
    fs = rec.fs
    waves = rec.meta["delineation"]
    assert isinstance(waves, dict)
    qrs_all = sorted((on, pk, off) for lst in waves.values() for k, on, pk, off in lst if k == "N")
    # group QRS marks of the same beat (peaks within 100 ms)
    groups: list[list[tuple[int, int, int]]] = []
    for q in qrs_all:
        if groups and q[1] - groups[-1][0][1] < int(0.1 * fs):
            groups[-1].append(q)
        else:
            groups.append([q])
    p_all = [(on, off) for lst in waves.values() for k, on, _pk, off in lst if k == "p"]
    t_all = [(on, off) for lst in waves.values() for k, on, _pk, off in lst if k == "t"]
    pr, qrs, qt = [], [], []
    for g in groups:
        if len(g) < 6:  # beat annotated in too few leads
            continue
        on = sorted(x[0] for x in g)[rank]
        off = sorted(x[2] for x in g)[-1 - rank]
        qrs.append((off - on) / fs * 1000)
        ps = [p for p in p_all if on - int(0.45 * fs) < p[1] <= on + int(0.02 * fs)]
        if len(ps) >= 6:
            pr.append((on - sorted(p[0] for p in ps)[rank]) / fs * 1000)
        ts = [t for t in t_all if off - int(0.05 * fs) < t[0] < on + int(0.7 * fs)]
        if len(ts) >= 6:
            qt.append((sorted(t[1] for t in ts)[-1 - rank] - on) / fs * 1000)

    def med(v: list[float]) -> float | None:
        return float(np.median(v)) if v else None

    return {"pr_ms": med(pr), "qrs_ms": med(qrs), "qt_ms": med(qt), "n_beats": float(len(qrs))}
