"""CSV ECG files. The accepted dialect (also in docs/ecg-csv-format.md):

1. Optional metadata comment lines before the header, starting with ``#``, holding ``key=value`` pairs
   separated by blanks or commas: ``fs`` (Hz; aliases ``sampling_rate``, ``sample_rate``,
   ``samplerate``), ``units`` (``mV``, ``uV``/``µV``, ``nV`` or ``V``; applies to lead columns without
   their own unit) and ``start`` (ISO 8601 start time). Other comment lines are ignored.
2. One header row of column names. Lead columns are lead names (normalised: ``MLII`` -> ``II``,
   ``AVR`` -> ``aVR``...), each optionally with a unit suffix in parentheses or brackets:
   ``II (mV)``, ``V1 [uV]``. An optional time column comes first, named ``time``/``t`` in seconds
   (``time (s)``, ``time_s``, ``seconds``) or in milliseconds (``time (ms)``, ``time_ms``, ``ms``).
3. Data rows: one per sample, the same number of fields as the header; ``.`` as the decimal mark;
   an empty field means "no data" (NaN) - e.g. an electrode that was not attached.
4. Delimiter: comma, semicolon or tab (taken from the header row).
5. The sampling rate comes from ``# fs=``, else from the time column (which must then be uniform
   within 1 %); when both exist they must agree within 0.5 %. Units must be declared (suffix or
   ``# units=``): a file without them is rejected rather than guessed.

One vendor dialect is accepted without a header: the Contec ECG90A export (``contec-ecg2csv``),
recognised as a file whose first line is data of exactly 12 integer fields and that has no ``#``
metadata: columns I, II, III, aVR, aVL, aVF, V1-V6 in ADC counts of 5 µV, 800 Hz.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path

import numpy as np

from services.ecg.formats.model import (
    STANDARD_LEADS,
    Device,
    FormatError,
    Recording,
    unique_lead_names,
    unit_scale_to_mv,
)

CONTEC_FS = 800.0
CONTEC_COUNT_MV = 0.005
_FS_KEYS = {"fs", "sampling_rate", "sample_rate", "samplerate"}
_TIME_S = {"time", "t", "time(s)", "time[s]", "time_s", "seconds", "sec", "s"}
_TIME_MS = {"time(ms)", "time[ms]", "time_ms", "ms", "t_ms"}
_UNIT_SUFFIX = re.compile(r"^(?P<name>.*?)\s*[\(\[]\s*(?P<unit>[^\)\]]*)\s*[\)\]]\s*$")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _metadata(comments: list[str]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for line in comments:
        for key, value in re.findall(r"([A-Za-z_]+)\s*=\s*([^\s,]+)", line.lstrip("#")):
            meta[key.lower()] = value
    return meta


def _parse_rows(lines: list[str], delimiter: str, width: int, first_line: int) -> np.ndarray:
    """Data lines -> float array (NaN for empty fields); errors name the row and column."""
    counts = [ln.count(delimiter) + 1 for ln in lines]
    for r, n in enumerate(counts):
        if n != width:
            raise FormatError(f"CSV row {first_line + r} has {n} fields, the header has {width}")
    cells = [c.strip() or "nan" for c in delimiter.join(lines).split(delimiter)] if lines else []
    try:
        return np.array(cells, dtype=np.float64).reshape(len(lines), width)
    except ValueError:
        pass
    for r, line in enumerate(lines):  # slow path, only to say where the bad value is
        for c, cell in enumerate(line.split(delimiter)):
            try:
                float(cell.strip() or "nan")
            except ValueError:
                raise FormatError(
                    f"CSV row {first_line + r}, column {c + 1}: {cell.strip()!r} is not a number"
                ) from None
    raise FormatError("CSV data cannot be parsed as numbers")


def read_csv(path: str | Path) -> Recording:
    text = _decode(Path(path).read_bytes())
    lines = text.splitlines()
    comments: list[str] = []
    idx = 0
    while idx < len(lines) and (not lines[idx].strip() or lines[idx].lstrip().startswith("#")):
        if lines[idx].strip():
            comments.append(lines[idx].strip())
        idx += 1
    if idx >= len(lines):
        raise FormatError("CSV file has no header row and no data")
    header_line = lines[idx]
    delimiter = max((",", ";", "\t"), key=header_line.count)
    if header_line.count(delimiter) == 0 and not comments:
        raise FormatError("unknown format: text file without a recognisable CSV header")
    header = [h.strip().strip('"') for h in next(csv.reader([header_line], delimiter=delimiter))]
    body = [ln for ln in lines[idx + 1 :] if ln.strip() and not ln.lstrip().startswith("#")]
    meta = _metadata(comments)
    warnings: list[str] = []

    if all(_NUMBER.match(h) or h == "" for h in header):  # headerless
        if comments or len(header) != 12 or not any(header):
            raise FormatError(
                "CSV has no header row of lead names (only the 12-column Contec ECG90A "
                "export may omit it); see docs/ecg-csv-format.md"
            )
        data = _parse_rows([header_line, *body], delimiter, 12, idx + 1)
        finite = data[np.isfinite(data)]
        if finite.size and not np.all(finite == np.round(finite)):
            raise FormatError("headerless CSV holds non-integer values: not a Contec ECG90A export")
        warnings.append("headerless CSV read as the Contec ECG90A export (800 Hz, 5 µV per count)")
        return Recording(
            fs=CONTEC_FS,
            lead_names=list(STANDARD_LEADS),
            signal_mv=data * CONTEC_COUNT_MV,
            source_format="csv",
            warnings=warnings,
            extra={"csv_dialect": "contec-ecg90a"},
            device=Device(manufacturer="Contec", model="ECG90A"),
        )

    time_scale: float | None = None
    key0 = header[0].lower().replace(" ", "")
    if key0 in _TIME_S:
        time_scale = 1.0
    elif key0 in _TIME_MS:
        time_scale = 1e-3
    lead_headers = header[1:] if time_scale is not None else header
    if not lead_headers:
        raise FormatError("CSV header names no lead columns")
    default_unit = meta.get("units")
    names: list[str] = []
    factors: list[float] = []
    for h in lead_headers:
        match = _UNIT_SUFFIX.match(h)
        name, unit = (match.group("name"), match.group("unit")) if match else (h, default_unit)
        if not unit:
            raise FormatError(f"CSV column {h!r} has no unit: add '(mV)' / '(uV)' to the name or a '# units=mV' line")
        names.append(name)
        factors.append(unit_scale_to_mv(unit))
    data = _parse_rows(body, delimiter, len(header), idx + 2)
    if data.shape[0] < 2:
        raise FormatError("CSV holds fewer than 2 samples")

    fs: float | None = None
    if any(k in meta for k in _FS_KEYS):
        raw_fs = next(meta[k] for k in _FS_KEYS if k in meta)
        try:
            fs = float(raw_fs)
        except ValueError:
            raise FormatError(f"CSV sampling rate {raw_fs!r} is not a number") from None
    if time_scale is not None:
        t = data[:, 0] * time_scale
        steps = np.diff(t)
        if not np.all(np.isfinite(steps)) or np.any(steps <= 0):
            raise FormatError("CSV time column is not strictly increasing")
        step = float(np.median(steps))
        if np.max(np.abs(steps - step)) > 0.01 * step + 1e-9:
            raise FormatError("CSV time column is not uniformly sampled (irregular sampling is not supported)")
        if fs is None:
            fs = 1.0 / step
        elif abs(fs * step - 1) > 0.005:
            raise FormatError(f"CSV '# fs={fs:g}' disagrees with its time column ({1 / step:.3f} Hz)")
        data = data[:, 1:]
    if fs is None or not fs > 0:
        raise FormatError("CSV sampling rate unknown: add a '# fs=500' line or a time column")
    start = None
    if "start" in meta:
        try:
            start = datetime.fromisoformat(meta["start"])
        except ValueError:
            raise FormatError(f"CSV start time {meta['start']!r} is not ISO 8601") from None
    signal = data * np.array(factors)
    return Recording(
        fs=fs,
        lead_names=unique_lead_names(names),
        signal_mv=signal,
        source_format="csv",
        start_time=start,
        warnings=warnings,
        extra={"csv_dialect": "documented"},
    )
