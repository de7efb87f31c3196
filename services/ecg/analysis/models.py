"""Result types of the ECG analysis: plain dataclasses holding only JSON-native values (``to_dict()``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

ANALYSIS_VERSION = "ecg-analysis/1.0"
DISCLAIMER_EN = "Machine-generated interpretation - awaiting physician confirmation."
DISCLAIMER_ZH = "机器自动分析结果,仅供参考,待医师审核确认。"


class RecordingLike(Protocol):
    fs: float
    lead_names: Any
    signal_mv: Any


@dataclass
class Statement:
    code: str
    en: str
    zh: str


@dataclass
class CriticalFinding:
    """A critical value (危急值).  `code` is stable for routing; texts are for people."""

    code: str  # vf_vt, asystole_pause, bradycardia, tachycardia, af_rvr, av_block_3, stemi, qtc_prolonged
    en: str
    zh: str
    value: float | None = None
    unit: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    at_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _native(asdict(self))


@dataclass
class Analysis:
    fs: float
    duration_s: float
    lead_names: list[str]
    quality: dict[str, Any]
    beats: dict[str, Any]
    rr: dict[str, Any]
    intervals: dict[str, Any]
    rhythm: dict[str, Any]
    st: dict[str, Any]
    stemi: dict[str, Any]
    statements: list[Statement] = field(default_factory=list)
    critical: list[CriticalFinding] = field(default_factory=list)
    machine_generated: bool = True
    confirmed: bool = False
    disclaimer_en: str = DISCLAIMER_EN
    disclaimer_zh: str = DISCLAIMER_ZH
    version: str = ANALYSIS_VERSION
    summary: dict[str, Any] | None = None  # long-record (Holter) summary

    def to_dict(self) -> dict[str, Any]:
        return _native(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


def _native(obj: Any) -> Any:
    """numpy scalars/arrays -> Python values, NaN -> None, recursively."""
    if isinstance(obj, dict):
        return {str(k): _native(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_native(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _native(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        f = float(obj)
        return None if f != f or f in (float("inf"), float("-inf")) else f
    return obj
