"""Range-readable sources for the long formats (WFDB, EDF, ISHNE).

A reader for a long format opens the file once, parses the header into the keyword arguments of
``Recording`` (everything except the signal) and exposes ``read_range(start, stop)`` that returns only
those rows, in mV, float32. ``read`` and ``iter_chunks`` are built on it, so a 24-hour Holter never has
to be in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import numpy as np

from services.ecg.formats.model import FormatError, Recording


@dataclass(eq=False)
class Source:
    meta: dict[str, Any]  # Recording kwargs except signal_mv / chunk_start / record_samples
    n_samples: int
    read_range: Callable[[int, int], np.ndarray]
    close: Callable[[], None] = field(default=lambda: None)

    @property
    def fs(self) -> float:
        return float(self.meta["fs"])

    @property
    def n_leads(self) -> int:
        return len(self.meta["lead_names"])

    def whole(self) -> Recording:
        return self._recording(0, self.n_samples)

    def chunks(self, seconds: float) -> Iterator[Recording]:
        if not seconds > 0:
            raise ValueError("chunk length must be positive")
        step = max(1, round(seconds * self.fs))
        for start in range(0, self.n_samples, step):
            yield self._recording(start, min(self.n_samples, start + step))

    def _recording(self, start: int, stop: int) -> Recording:
        signal = self.read_range(start, stop)
        if signal.shape != (stop - start, self.n_leads):
            raise FormatError(
                f"truncated file: expected {stop - start} samples x {self.n_leads} leads "
                f"from sample {start}, got {signal.shape[0]} x {signal.shape[1]}"
            )
        meta = dict(self.meta)
        if start:
            if meta.get("start_time") is not None:
                meta["start_time"] = meta["start_time"] + timedelta(seconds=start / self.fs)
            meta["annotations"] = [
                replace(a, sample=a.sample - start, end_sample=None if a.end_sample is None else a.end_sample - start)
                for a in meta.get("annotations", [])
                if start <= a.sample < stop
            ]
        elif stop < self.n_samples:
            meta["annotations"] = [a for a in meta.get("annotations", []) if a.sample < stop]
        meta["warnings"] = list(meta.get("warnings", []))
        return Recording(signal_mv=signal, chunk_start=start, record_samples=self.n_samples, **meta)


def chunk_whole(recording: Recording, seconds: float) -> Iterator[Recording]:
    """Chunks of an already-read (short) recording, for formats without range access."""
    src = Source(
        meta={
            k: getattr(recording, k)
            for k in (
                "fs",
                "lead_names",
                "source_format",
                "start_time",
                "device",
                "patient",
                "device_measurements",
                "annotations",
                "median_beats",
                "warnings",
                "extra",
            )
        },
        n_samples=recording.n_samples,
        read_range=lambda a, b: recording.signal_mv[a:b],
    )
    return src.chunks(seconds)
