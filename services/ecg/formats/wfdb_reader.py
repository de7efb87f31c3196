"""WFDB records (PhysioNet): ``.hea`` + ``.dat`` via the ``wfdb`` package, and the ``.hea`` + ``.mat`` variant.

Signals are read by sample range (``wfdb.rdrecord(sampfrom, sampto)``) so long records stream through
``iter_chunks``. Only voltage signals (units nV/uV/mV/V; WFDB's default unit is mV) are ECG leads; other
signals (blood pressure, respiration) are skipped with a warning. Invalid samples become NaN. A
``.atr`` reference annotation file next to the header becomes ``annotations``.

``.hea`` + ``.mat`` records (PhysioNet/CinC challenges) are read with a small header parser (``wfdb``
cannot parse the CinC 2017 headers' ``2014-05-08 05:05:15`` dates) and ``scipy.io.loadmat(path)["val"]``:
physical = (value - baseline) / gain.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import wfdb

from services.ecg.formats.model import (
    Annotation,
    FormatError,
    is_voltage_unit,
    unique_lead_names,
    unit_scale_to_mv,
)
from services.ecg.formats.source import Source

_SUFFIXES = {".hea", ".dat", ".mat", ".atr", ".xyz"}
_BYTES_PER_SAMPLE = {
    "8": 1,
    "80": 1,
    "16": 2,
    "61": 2,
    "160": 2,
    "212": 1.5,
    "24": 3,
    "32": 4,
    "310": 4 / 3,
    "311": 4 / 3,
}


def record_base(path: str | Path) -> Path:
    """``.../100.dat`` or ``.../100`` -> ``.../100`` (the header must exist as ``.../100.hea``)."""
    p = Path(path)
    base = p.with_suffix("") if p.suffix.lower() in _SUFFIXES else p
    if not base.with_suffix(".hea").is_file():
        raise FormatError(f"WFDB header {base.name}.hea not found next to {p.name}")
    return base


def _patient(comments: list[str]) -> dict[str, Any]:
    patient: dict[str, Any] = {}
    text = "\n".join(comments)
    age = re.search(r"<?\bage>?\s*:\s*(\d{1,3})", text, re.I)
    sex = re.search(r"<?\bsex>?\s*:\s*([A-Za-z]+)", text, re.I)
    if comments and not age:  # MIT-BIH style first comment: "69 M 1085 1629 x1"
        mit = re.match(r"\s*(\d{1,3})\s+([MF])\b", comments[0])
        if mit:
            patient["age"], patient["sex"] = int(mit.group(1)), mit.group(2)
    if age:
        patient["age"] = int(age.group(1))
    if sex:
        value = {"m": "M", "male": "M", "f": "F", "female": "F"}.get(sex.group(1).lower())
        if value:
            patient["sex"] = value
    if comments:
        patient["header_comments"] = comments  # free text from the source: treat as identifying
    return patient


def _annotations(base: Path) -> list[Annotation]:
    if not base.with_suffix(".atr").is_file():
        return []
    try:
        ann = wfdb.rdann(str(base), "atr")
    except Exception as exc:  # wfdb raises bare Exceptions/ValueErrors on corrupt files
        raise FormatError(f"WFDB annotation file {base.name}.atr is corrupt: {exc}") from exc
    aux = ann.aux_note or [""] * len(ann.sample)
    return [
        Annotation(sample=int(s), label=str(sym), aux=str(a).rstrip("\x00"))
        for s, sym, a in zip(ann.sample, ann.symbol, aux, strict=False)
    ]


def _open_dat(base: Path) -> Source:
    try:
        header = wfdb.rdheader(str(base))
    except Exception as exc:
        raise FormatError(f"WFDB header {base.name}.hea cannot be parsed: {exc}") from exc
    n_samples = int(header.sig_len or 0)
    if not header.sig_name or not n_samples:
        raise FormatError(f"WFDB record {base.name} has no signals")
    units = [u or "mV" for u in (header.units or ["mV"] * header.n_sig)]
    keep = [i for i, u in enumerate(units) if is_voltage_unit(u)]
    warnings = [
        f"skipped non-ECG signal {header.sig_name[i]!r} ({units[i]})" for i in range(header.n_sig) if i not in keep
    ]
    if not keep:
        raise FormatError(f"WFDB record {base.name} has no voltage (ECG) signals")
    scale = np.array([unit_scale_to_mv(units[i]) for i in keep], dtype=np.float32)
    for file_name in sorted({header.file_name[i] for i in keep}):
        data_file = base.parent / file_name
        if not data_file.is_file():
            raise FormatError(f"WFDB signal file {file_name} is missing")
        in_file = [i for i in range(header.n_sig) if header.file_name[i] == file_name]
        width = _BYTES_PER_SAMPLE.get(str(header.fmt[in_file[0]]))
        if width is not None:
            offset = int((header.byte_offset or [0] * header.n_sig)[in_file[0]] or 0)
            expected = offset + math.ceil(n_samples * len(in_file) * width)
            if data_file.stat().st_size < expected:
                raise FormatError(
                    f"truncated file: {file_name} holds {data_file.stat().st_size} bytes, the header implies {expected}"
                )

    def read_range(start: int, stop: int) -> np.ndarray:
        try:
            rec = wfdb.rdrecord(str(base), sampfrom=start, sampto=stop, channels=keep, physical=True, return_res=32)
        except Exception as exc:
            raise FormatError(f"WFDB signal data of {base.name} cannot be read: {exc}") from exc
        sig = np.asarray(rec.p_signal, dtype=np.float32)
        if sig.shape[0] != stop - start:
            raise FormatError(f"truncated file: WFDB data ends at sample {start + sig.shape[0]} of {n_samples}")
        return sig * scale

    start_time = None
    if header.base_date is not None:
        start_time = datetime.combine(header.base_date, header.base_time or datetime.min.time())
    meta = {
        "fs": float(header.fs),
        "lead_names": unique_lead_names(header.sig_name[i] for i in keep),
        "source_format": "wfdb",
        "start_time": start_time,
        "patient": _patient(list(header.comments or [])),
        "annotations": _annotations(base),
        "warnings": warnings,
        "extra": {"record_name": header.record_name},
    }
    return Source(meta=meta, n_samples=n_samples, read_range=read_range)


_GAIN = re.compile(r"^(?P<gain>[-+0-9.eE]+)?(?:\((?P<base>[-+0-9]+)\))?(?:/(?P<units>\S+))?$")


def _parse_mat_header(hea: Path) -> tuple[float, int, list[dict[str, Any]], datetime | None, list[str]]:
    lines = hea.read_text(errors="replace").splitlines()
    comments = [ln.lstrip("#").strip() for ln in lines if ln.startswith("#")]
    body = [ln.split() for ln in lines if ln.strip() and not ln.startswith("#")]
    if not body or len(body[0]) < 2:
        raise FormatError(f"WFDB header {hea.name} has no record line")
    rec = body[0]
    try:
        n_sig = int(rec[1])
        fs = float(rec[2].split("/")[0].split("(")[0]) if len(rec) > 2 else 250.0
        n_samples = int(rec[3]) if len(rec) > 3 else 0
    except ValueError as exc:
        raise FormatError(f"WFDB header {hea.name}: malformed record line") from exc
    start = None
    stamp = " ".join(rec[4:6])
    for fmt in ("%Y-%m-%d %H:%M:%S", "%H:%M:%S %d/%m/%Y"):
        try:
            start = datetime.strptime(stamp, fmt)
            break
        except ValueError:
            continue
    if len(body) < 1 + n_sig:
        raise FormatError(f"WFDB header {hea.name} declares {n_sig} signals but describes {len(body) - 1}")
    signals = []
    for k, fields in enumerate(body[1 : 1 + n_sig]):
        match = _GAIN.match(fields[2]) if len(fields) > 2 else None
        if match is None:
            raise FormatError(f"WFDB header {hea.name}: malformed gain for signal {k + 1}")
        gain = float(match.group("gain") or 0) or 200.0
        adc_zero = int(fields[4]) if len(fields) > 4 else 0
        baseline = int(match.group("base")) if match.group("base") else adc_zero
        signals.append(
            {
                "gain": gain,
                "baseline": baseline,
                "units": match.group("units") or "mV",
                "name": " ".join(fields[8:]) if len(fields) > 8 else f"ECG{k + 1}",
            }
        )
    return fs, n_samples, signals, start, comments


def _open_mat(base: Path) -> Source:
    mat_path = base.with_suffix(".mat")
    fs, declared, signals, start, comments = _parse_mat_header(base.with_suffix(".hea"))
    try:
        val = scipy.io.loadmat(str(mat_path))["val"]
    except (KeyError, ValueError, OSError, TypeError) as exc:
        raise FormatError(f"{mat_path.name} is not a WFDB .mat signal file (variable 'val'): {exc}") from exc
    val = np.atleast_2d(np.asarray(val))
    if val.shape[0] != len(signals):
        raise FormatError(f"{mat_path.name} holds {val.shape[0]} signals, the header declares {len(signals)}")
    if declared and val.shape[1] != declared:
        raise FormatError(f"truncated file: {mat_path.name} holds {val.shape[1]} samples, header says {declared}")
    for s in signals:
        unit_scale_to_mv(s["units"])
    physical = np.empty((val.shape[1], len(signals)), dtype=np.float32)
    for k, s in enumerate(signals):
        physical[:, k] = (val[k].astype(np.float64) - s["baseline"]) / s["gain"] * unit_scale_to_mv(s["units"])
    meta = {
        "fs": fs,
        "lead_names": unique_lead_names(s["name"] for s in signals),
        "source_format": "wfdb",
        "start_time": start,
        "patient": _patient(comments),
        "annotations": _annotations(base),
        "extra": {"record_name": base.name, "signal_file": "mat"},
    }
    return Source(meta=meta, n_samples=physical.shape[0], read_range=lambda a, b: physical[a:b])


def open_wfdb(path: str | Path) -> Source:
    base = record_base(path)
    header_text = base.with_suffix(".hea").read_text(errors="replace")
    if re.search(r"^\S+\.mat\s", header_text, re.M):
        return _open_mat(base)  # MATLAB container: read "val" with scipy, not as raw bytes
    return _open_dat(base)
