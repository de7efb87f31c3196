"""The one recording model every ECG reader produces, its errors, and lead-name normalisation.

Patient fields are identifiers: nothing in this package logs them, and ``Recording.__repr__`` leaves
them out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

STANDARD_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

# Keys used in Recording.device_measurements (only the ones a file carries are present).
MEASUREMENT_KEYS: tuple[str, ...] = (
    "hr_bpm",  # ventricular rate as printed by the device
    "atrial_rate_bpm",
    "rr_ms",
    "pp_ms",
    "p_ms",  # P duration
    "pr_ms",
    "qrs_ms",
    "qt_ms",
    "qtc_ms",  # the device's QTc (formula in "qtc_formula" when stated)
    "qtcb_ms",  # Bazett, when the device gives it separately
    "qtcf_ms",  # Fridericia, when the device gives it separately
    "p_axis_deg",
    "qrs_axis_deg",
    "t_axis_deg",
)
# Non-numeric entries: "statements" (list[str], the device's interpretation), "severity" (str),
# "qtc_formula" (str).

_UNIT_TO_MV: dict[str, float] = {
    "nv": 1e-6,
    "uv": 1e-3,
    "µv": 1e-3,
    "μv": 1e-3,
    "mv": 1.0,
    "v": 1e3,
}


class FormatError(ValueError):
    """The file is not a supported ECG format, or it is corrupt. ``str(err)`` is a human reason."""


class RecordTooLongError(FormatError):
    """The whole record does not fit the memory budget of ``read``; use ``iter_chunks``."""


@dataclass(frozen=True)
class Device:
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    software: str | None = None


@dataclass(frozen=True)
class Annotation:
    """A mark the file carries: a beat label, a wave boundary, an artefact span.

    ``sample`` (and ``end_sample`` for spans) index ``Recording.signal_mv`` rows.
    """

    sample: int
    label: str
    end_sample: int | None = None
    aux: str = ""
    lead: str | None = None


@dataclass(eq=False)
class MedianBeats:
    """Representative (median/average) beats the device computed, samples x leads in mV."""

    fs: float
    lead_names: list[str]
    signal_mv: np.ndarray


@dataclass(eq=False)
class Recording:
    """One ECG recording, normalised.

    ``signal_mv`` is float32, shape (samples, leads), millivolts; NaN marks samples the file
    explicitly leaves empty (e.g. an electrode that was not attached). ``chunk_start`` is the index in
    the source record of row 0 (non-zero only for chunks from ``iter_chunks``); ``record_samples`` is
    the length of the whole source record.
    """

    fs: float
    lead_names: list[str]
    signal_mv: np.ndarray
    source_format: str
    start_time: datetime | None = None
    device: Device = field(default_factory=Device)
    patient: dict[str, Any] = field(default_factory=dict)
    device_measurements: dict[str, Any] = field(default_factory=dict)
    annotations: list[Annotation] = field(default_factory=list)
    median_beats: MedianBeats | None = None
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    chunk_start: int = 0
    record_samples: int | None = None

    def __post_init__(self) -> None:
        sig = self.signal_mv
        if not isinstance(sig, np.ndarray) or sig.ndim != 2:
            raise FormatError("signal must be a samples x leads array")
        if sig.dtype != np.float32:
            self.signal_mv = sig = sig.astype(np.float32)
        if sig.shape[1] != len(self.lead_names):
            raise FormatError(f"{sig.shape[1]} signal columns but {len(self.lead_names)} lead names")
        if len(set(self.lead_names)) != len(self.lead_names):
            raise FormatError(f"duplicate lead names: {self.lead_names}")
        if not (math.isfinite(self.fs) and self.fs > 0):
            raise FormatError(f"invalid sampling rate {self.fs!r}")
        if self.record_samples is None:
            self.record_samples = self.chunk_start + sig.shape[0]

    @property
    def n_samples(self) -> int:
        return int(self.signal_mv.shape[0])

    @property
    def n_leads(self) -> int:
        return len(self.lead_names)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def lead(self, name: str) -> np.ndarray:
        """One lead's samples by (normalised) name."""
        try:
            return self.signal_mv[:, self.lead_names.index(normalize_lead_name(name))]
        except ValueError:
            raise KeyError(name) from None

    def __repr__(self) -> str:  # never print patient identifiers
        return (
            f"Recording(format={self.source_format!r}, fs={self.fs:g}, leads={self.lead_names}, "
            f"samples={self.n_samples}, duration_s={self.duration_s:.3f}, start_time={self.start_time!r})"
        )


# --------------------------------------------------------------------------- lead names

_ALIASES: dict[str, str] = {
    "I": "I",
    "II": "II",
    "III": "III",
    "AVR": "aVR",
    "AVL": "aVL",
    "AVF": "aVF",
    "VR": "aVR",
    "VL": "aVL",
    "VF": "aVF",
    "-AVR": "-aVR",
    "DI": "I",
    "DII": "II",
    "DIII": "III",
    "D1": "I",
    "D2": "II",
    "D3": "III",
    "MLI": "I",
    "MLII": "II",
    "MLIII": "III",
    "ML1": "I",
    "ML2": "II",
    "ML3": "III",
    "LEADI": "I",
    "LEADII": "II",
    "LEADIII": "III",
    "VX": "X",
    "VY": "Y",
    "VZ": "Z",
}
_PREFIXES = ("MDC_ECG_LEAD_", "ECG_LEAD_", "LEAD_", "LEAD-", "LEAD ", "ECG ")
_PAREN = re.compile(r"\s*[\(\[][^\)\]]*[\)\]]\s*$")
_VLEAD = re.compile(r"^V(\d{1,2})(R?)$")


def normalize_lead_name(name: str) -> str:
    """Map a lead label to the standard spelling (I, II, III, aVR, aVL, aVF, V1–V6).

    Handles case, surrounding blanks, "Lead I", "Lead I (Einthoven)", MDC codes (MDC_ECG_LEAD_AVR),
    MIT-BIH "MLII", European "DII", "VR"/"aVR"/"AVR". Other leads keep a tidy upper-case name
    (V7, V4R, X, CM5); an empty label becomes "?".
    """
    raw = " ".join(str(name).replace("\x00", " ").split())
    text = _PAREN.sub("", raw).strip() or raw
    up = text.upper()
    for prefix in _PREFIXES:
        if up.startswith(prefix) and len(up) > len(prefix):
            up = up[len(prefix) :].strip()
            text = text[len(prefix) :].strip()
            break
    key = up.replace(" ", "")
    if key in _ALIASES:
        return _ALIASES[key]
    match = _VLEAD.match(key)
    if match:
        return f"V{int(match.group(1))}{match.group(2)}"
    return text.upper() if text else "?"


def unique_lead_names(names: Iterable[str]) -> list[str]:
    """Normalise and make unique (a second "ECG" becomes "ECG_2")."""
    out: list[str] = []
    for name in names:
        base = normalize_lead_name(name)
        candidate, k = base, 2
        while candidate in out:
            candidate, k = f"{base}_{k}", k + 1
        out.append(candidate)
    return out


# --------------------------------------------------------------------------- units & helpers


def unit_scale_to_mv(unit: str) -> float:
    """Factor converting a voltage in ``unit`` to millivolts; FormatError if not a voltage."""
    key = unit.strip().replace(" ", "").lower()
    if key in _UNIT_TO_MV:
        return _UNIT_TO_MV[key]
    raise FormatError(f"physical unit {unit!r} is not a voltage (expected nV, uV, mV or V)")


def is_voltage_unit(unit: str) -> bool:
    return unit.strip().replace(" ", "").lower() in _UNIT_TO_MV


def stack_leads(columns: Sequence[np.ndarray], names: Sequence[str]) -> np.ndarray:
    """Columns -> samples x leads float32; FormatError naming the leads if lengths differ."""
    lengths = {len(c) for c in columns}
    if not columns:
        raise FormatError("the file contains no ECG leads")
    if len(lengths) != 1:
        detail = ", ".join(f"{n}={len(c)}" for n, c in zip(names, columns, strict=True))
        raise FormatError(f"leads have different lengths ({detail})")
    out = np.empty((lengths.pop(), len(columns)), dtype=np.float32)
    for j, col in enumerate(columns):
        out[:, j] = col
    return out


def clean_text(raw: bytes | str | None) -> str | None:
    """Decode a NUL-padded text field; None when empty."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.split(b"\x00", 1)[0]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    else:
        text = raw
    text = "".join(ch for ch in text if ch.isprintable()).strip()
    return text or None


def put(target: dict[str, Any], key: str, value: Any, valid: Callable[[Any], bool] | None = None) -> None:
    """Set ``target[key]`` only for a present (and, if given, valid) value."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return
    if valid is not None and not valid(value):
        return
    target[key] = value
