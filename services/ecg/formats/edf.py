"""EDF / EDF+ (and BDF) recordings via pyedflib, read by sample range.

Only signals whose physical dimension is a voltage (nV, uV/µV, mV, V) are ECG leads; others are
skipped with a warning. Those leads must share one sampling rate and length. EDF+ annotations become
``annotations``; EDF+D (discontinuous) files are rejected.

Known writer quirk, corrected with a warning: the EDF files written by the Contec ECG90A converter
(RigacciOrg/ecg-contec ``contec-ecg2edf``) store the device's ADC counts (5 µV per count, as in its
SCP-ECG and CSV exports of the same recordings) but declare a physical range of -1000..1000 mV over
the full 16-bit digital range, which would make every amplitude 6.1 times too large. Such files are
recognised by their exact header signature (the twelve standard leads, mV, physical ±1000,
digital -32768..32767, one sample per 1.25 ms data record) and their counts are scaled by 5 µV.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyedflib

from services.ecg.formats.model import (
    STANDARD_LEADS,
    Annotation,
    Device,
    FormatError,
    clean_text,
    is_voltage_unit,
    put,
    unique_lead_names,
    unit_scale_to_mv,
)
from services.ecg.formats.source import Source

CONTEC_COUNT_MV = 0.005


def _is_contec_quirk(f: pyedflib.EdfReader, keep: list[int], names: list[str]) -> bool:
    if tuple(names) != STANDARD_LEADS or f.signals_in_file != 12:
        return False
    for i in keep:
        if (
            f.getPhysicalDimension(i).strip() != "mV"
            or f.getPhysicalMinimum(i) != -1000
            or f.getPhysicalMaximum(i) != 1000
            or f.getDigitalMinimum(i) != -32768
            or f.getDigitalMaximum(i) != 32767
            or f.samples_in_datarecord(i) != 1
        ):
            return False
    return abs(f.datarecord_duration - 0.00125) < 2e-6


def _patient(f: pyedflib.EdfReader, raw_header: bytes) -> dict[str, Any]:
    patient: dict[str, Any] = {}
    if f.filetype in (pyedflib.FILETYPE_EDFPLUS, pyedflib.FILETYPE_BDFPLUS):
        put(patient, "id", clean_text(f.getPatientCode()))
        put(patient, "name", clean_text(f.getPatientName().replace("_", " ")))
        put(patient, "sex", {"male": "M", "female": "F", "m": "M", "f": "F"}.get(str(f.getSex()).strip().lower()))
        try:
            birth = f.getBirthdate(string=False)
        except (ValueError, TypeError):
            birth = None
        put(patient, "birth_date", birth.date() if isinstance(birth, datetime) else None)
    else:  # plain EDF: the 80-character "local patient identification" is free text
        text = clean_text(raw_header[8:88].decode("latin-1"))
        if text and text.upper().strip("X -") and text != "dd-MMM-yyyy":
            patient["identification"] = text
    return patient


def _check_size(path: Path) -> bytes:
    """Validate the fixed header and the file size it implies, before pyedflib sees the file."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(256)
        if len(head) < 256:
            raise FormatError(f"truncated file: {size} bytes cannot hold an EDF header")
        if head[:8] not in (b"0       ", b"\xffBIOSEMI"):
            raise FormatError(f"wrong header: version field {head[:8]!r} is neither EDF '0' nor BDF")
        try:
            header_bytes, n_records, n_signals = int(head[184:192]), int(head[236:244]), int(head[252:256])
        except ValueError:
            raise FormatError("wrong header: EDF header fields are not numbers") from None
        if n_signals < 1 or header_bytes != 256 * (n_signals + 1):
            raise FormatError(f"wrong header: EDF declares {n_signals} signals and {header_bytes} header bytes")
        head += fh.read(header_bytes - 256)
    if len(head) < header_bytes:
        raise FormatError(f"truncated file: the EDF header needs {header_bytes} bytes, the file has {size}")
    offset = 256 + n_signals * 216
    try:
        per_record = sum(int(head[offset + 8 * k : offset + 8 * k + 8]) for k in range(n_signals))
    except ValueError:
        raise FormatError("wrong header: EDF samples-per-record fields are not numbers") from None
    expected = header_bytes + max(n_records, 0) * per_record * (3 if head[:1] == b"\xff" else 2)
    if size < expected:
        raise FormatError(f"truncated file: EDF data ends at byte {size} of {expected}")
    return head[:256]


def open_edf(path: str | Path) -> Source:
    path = Path(path)
    raw_header = _check_size(path)
    if raw_header[192:197] == b"EDF+D" or raw_header[192:197] == b"BDF+D":
        raise FormatError("EDF+D (discontinuous) recordings are not supported")
    try:
        f = pyedflib.EdfReader(str(path))
    except OSError as exc:
        raise FormatError(f"not a valid EDF/BDF file: {exc}") from exc
    try:
        return _source(f, raw_header)
    except Exception:
        f.close()
        raise


def _source(f: pyedflib.EdfReader, raw_header: bytes) -> Source:
    n_sig = f.signals_in_file
    dims = [f.getPhysicalDimension(i).strip() for i in range(n_sig)]
    keep = [i for i in range(n_sig) if is_voltage_unit(dims[i])]
    warnings = [
        f"skipped non-ECG signal {f.getLabel(i).strip()!r} ({dims[i] or 'no unit'})"
        for i in range(n_sig)
        if i not in keep
    ]
    if not keep:
        raise FormatError("EDF file has no voltage (ECG) signals")
    rates = {float(f.getSampleFrequency(i)) for i in keep}
    if len(rates) != 1:
        raise FormatError(f"EDF ECG signals have different sampling rates: {sorted(rates)} Hz")
    lengths = [int(n) for n in f.getNSamples()]
    if len({lengths[i] for i in keep}) != 1:
        detail = ", ".join(f"{f.getLabel(i).strip()}={lengths[i]}" for i in keep)
        raise FormatError(f"leads have different lengths ({detail})")
    names = unique_lead_names(f.getLabel(i) for i in keep)
    fs, n_samples = rates.pop(), lengths[keep[0]]
    quirk = _is_contec_quirk(f, keep, names)
    if quirk:
        warnings.append(
            "EDF header calibration (±1000 mV over 16 bits) is the Contec ECG90A converter's "
            "known error; samples scaled as ADC counts of 5 µV"
        )
    scale = [unit_scale_to_mv(dims[i]) for i in keep]

    def read_range(start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, len(keep)), dtype=np.float32)
        for j, i in enumerate(keep):
            if quirk:
                out[:, j] = f.readSignal(i, start, stop - start, digital=True) * CONTEC_COUNT_MV
            else:
                out[:, j] = f.readSignal(i, start, stop - start) * scale[j]
        return out

    annotations = []
    if f.annotations_in_file:
        for onset, duration, text in zip(*f.readAnnotations(), strict=True):
            sample = round(float(onset) * fs)
            end = round((float(onset) + float(duration)) * fs) if float(duration) > 0 else None
            annotations.append(Annotation(sample=sample, label=str(text), end_sample=end))
    meta = {
        "fs": fs,
        "lead_names": names,
        "source_format": "edf",
        "start_time": f.getStartdatetime(),
        "device": Device(model=clean_text(f.getEquipment())),
        "patient": _patient(f, raw_header),
        "annotations": annotations,
        "warnings": warnings,
        "extra": {"filetype": {0: "EDF", 1: "EDF+", 2: "BDF", 3: "BDF+"}.get(f.filetype, str(f.filetype))},
    }
    return Source(meta=meta, n_samples=n_samples, read_range=read_range, close=f.close)
