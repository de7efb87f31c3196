"""The compact signal: int16 samples x leads in an ``.npy`` file, a gain per lead, -32768 for "no data".

Row-major samples x leads means a time window is one contiguous byte range, so the viewer's window of a
24-hour Holter is a ranged read of the object, never the whole file. A 10 s 12-lead at 500 Hz is 120 kB.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np
from scipy import signal as sps

from services.ecg.schemas import SignalLayout

MISSING = -32768
FULL_SCALE = 32000  # counts the largest sample of a lead maps to (headroom below int16's limit)
MIN_GAIN_MV = 0.0005  # 0.5 µV per count: finer than any ECG amplifier resolves


def gains_for(max_abs_mv: np.ndarray) -> list[float]:
    """mV per count per lead, from the largest absolute sample of each lead."""
    out = []
    for m in np.asarray(max_abs_mv, dtype=np.float64):
        m = float(m) if math.isfinite(float(m)) else 0.0
        out.append(max(MIN_GAIN_MV, m / FULL_SCALE))
    return out


def max_abs(signal_mv: np.ndarray) -> np.ndarray:
    """Per-lead largest absolute sample, ignoring NaN (0 for an all-NaN lead)."""
    a = np.abs(signal_mv)
    if a.size == 0:
        return np.zeros(signal_mv.shape[1])
    with np.errstate(invalid="ignore"):
        m = np.where(np.isnan(a), -np.inf, a).max(axis=0)
    return np.where(np.isfinite(m), m, 0.0)


def quantize(signal_mv: np.ndarray, gains: list[float]) -> np.ndarray:
    g = np.asarray(gains, dtype=np.float32)
    counts = np.rint(signal_mv / g)
    counts = np.clip(counts, MISSING + 1, 32767)
    counts[np.isnan(signal_mv)] = MISSING
    return counts.astype("<i2")


def write_npy(out: BinaryIO, chunks: Iterable[np.ndarray], samples: int, gains: list[float]) -> SignalLayout:
    """Write float32 mV ``chunks`` (samples x leads each) as the compact .npy; returns its layout."""
    leads = len(gains)
    np.lib.format.write_array_header_1_0(out, {"descr": "<i2", "fortran_order": False, "shape": (samples, leads)})
    offset = out.tell()
    written = 0
    for chunk in chunks:
        if chunk.shape[1] != leads:
            raise ValueError(f"chunk has {chunk.shape[1]} leads, expected {leads}")
        out.write(quantize(chunk, gains).tobytes())
        written += chunk.shape[0]
    if written != samples:
        raise ValueError(f"wrote {written} samples, expected {samples}")
    return SignalLayout(offset=offset, samples=samples, leads=leads, gain_mv=gains)


def decode(raw: bytes | np.ndarray, layout: SignalLayout) -> np.ndarray:
    """int16 bytes (whole rows) -> float32 mV samples x leads, NaN where the file had no data."""
    counts = np.frombuffer(raw, dtype="<i2") if isinstance(raw, bytes | bytearray) else np.asarray(raw)
    counts = counts.reshape(-1, layout.leads)
    out = counts.astype(np.float32) * np.asarray(layout.gain_mv, dtype=np.float32)
    out[counts == MISSING] = np.nan
    return out


def byte_range(layout: SignalLayout, start: int, stop: int) -> tuple[int, int]:
    """(offset, length) of sample rows [start, stop) in the object."""
    row = layout.leads * 2
    return layout.offset + start * row, (stop - start) * row


def open_local(path: Path, layout: SignalLayout) -> np.memmap:
    """The int16 counts of a downloaded signal object, memory-mapped (never all in memory)."""
    return np.memmap(path, dtype="<i2", mode="r", offset=layout.offset, shape=(layout.samples, layout.leads))


def iter_local(path: Path, layout: SignalLayout, chunk_samples: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start sample, float32 mV chunk) over a downloaded signal object."""
    counts = open_local(path, layout)
    for start in range(0, layout.samples, chunk_samples):
        yield start, decode(np.array(counts[start : start + chunk_samples]), layout)


def resample(x: np.ndarray, fs: float, target_fs: float) -> tuple[np.ndarray, float]:
    """Anti-aliased rational resampling of samples x leads to about ``target_fs``; (signal, actual fs)."""
    if target_fs <= 0 or abs(target_fs - fs) < 1e-9 or x.shape[0] < 2:
        return x, fs
    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    if ratio.numerator == 0:
        ratio = Fraction(1, max(1, round(fs / target_fs)))
    missing = np.isnan(x)
    clean = np.where(missing, 0.0, x).astype(np.float32)
    y = sps.resample_poly(clean, ratio.numerator, ratio.denominator, axis=0).astype(np.float32)
    if missing.any():
        # mark output samples whose source neighbourhood had no data
        idx = np.minimum((np.arange(y.shape[0]) / float(ratio)).astype(np.int64), x.shape[0] - 1)
        y[missing[idx]] = np.nan
    return y, fs * float(ratio)
