"""What a claimed draft starts from: the machine's measurements under the report's keys (axes and Fridericia
QTc included, as the analysis package writes them) and its statements without the machine's disclaimer."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from services.ecg.reading import DISCLAIMER_CODE, machine_measurements, machine_statements, without_disclaimer
from tests.ecg.ecg_service_support import LEADS, sinus

REPORT_KEYS = {"hr_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms", "qtcf_ms", "rr_ms", "p_axis_deg", "qrs_axis_deg",
               "t_axis_deg"}


class _Trace:
    def __init__(self, signal: Any, fs: float) -> None:
        self.fs, self.lead_names, self.signal_mv = fs, list(LEADS), signal


@pytest.fixture(scope="module")
def analysis() -> dict[str, Any]:
    """A real machine reading of a synthetic 12-lead sinus rhythm, as the job stores it (``to_dict()``)."""
    from services.ecg.analysis import analyze

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result: dict[str, Any] = analyze(_Trace(sinus(), 500.0)).to_dict()
    return result


def test_keys_as_the_analysis_package_writes_them(analysis: dict[str, Any]) -> None:
    iv = analysis["intervals"]
    for key in ("p_axis", "qrs_axis", "t_axis", "qtc_fridericia_ms"):
        assert isinstance(iv.get(key), int | float), f"the analysis no longer writes intervals.{key}"
    m = machine_measurements(analysis)
    assert set(m) == REPORT_KEYS
    assert m["p_axis_deg"] == round(iv["p_axis"], 1) and m["qrs_axis_deg"] == round(iv["qrs_axis"], 1)
    assert m["t_axis_deg"] == round(iv["t_axis"], 1)
    assert m["qtcf_ms"] == round(iv["qtc_fridericia_ms"], 1) and m["qtc_ms"] == round(iv["qtc_ms"], 1)
    assert 60 <= m["hr_bpm"] <= 85  # the trace beats at 72/min


def test_measurement_key_mapping_without_the_engine() -> None:
    analysis = {
        "intervals": {"pr_ms": 160.0, "qrs_ms": 92.0, "qt_ms": 380.0, "qtc_ms": 410.4, "qtc_fridericia_ms": 401.26,
                      "p_axis": 55.0, "qrs_axis": -12.0, "t_axis": 40.0, "rr_ms": 850.0, "hr_bpm": 71.0,
                      "p_wave": True},
        "rr": {"hr_bpm": 70.0, "rr_mean_ms": 857.0},
        "rhythm": {"rhythm": "sinus_rhythm"},
    }
    assert machine_measurements(analysis) == {
        "hr_bpm": 71.0, "pr_ms": 160.0, "qrs_ms": 92.0, "qt_ms": 380.0, "qtc_ms": 410.4, "qtcf_ms": 401.3,
        "rr_ms": 850.0, "p_axis_deg": 55.0, "qrs_axis_deg": -12.0, "t_axis_deg": 40.0,
    }
    # an axis the analysis could not measure (None), booleans and a missing part are left out
    assert machine_measurements({"intervals": {"qrs_axis": None, "p_wave": True}, "rr": {"hr_bpm": 48}}) == {
        "hr_bpm": 48.0}
    assert machine_measurements(None) == {} and machine_measurements({}) == {}


def test_the_disclaimer_never_enters_the_draft(analysis: dict[str, Any]) -> None:
    codes = [s["code"] for s in analysis["statements"]]
    assert codes[0] == DISCLAIMER_CODE, "the analysis labels its reading with the disclaimer statement"
    draft = machine_statements(analysis)
    assert draft, "the machine's interpretation is still offered"
    assert DISCLAIMER_CODE not in {s["code"] for s in draft}
    texts = {s["en"] for s in draft} | {s["zh"] for s in draft}
    assert analysis["disclaimer_en"] not in texts and analysis["disclaimer_zh"] not in texts
    assert all(s["source"] == "machine" for s in draft)
    assert [s["code"] for s in draft] == codes[1:]


def test_without_disclaimer_keeps_everything_else() -> None:
    statements = [{"code": DISCLAIMER_CODE, "zh": "机器自动分析", "en": "Machine", "source": "machine"},
                  {"code": None, "zh": "窦性心律", "en": "Sinus rhythm", "source": "reader"},
                  {"code": "rhythm_sinus_rhythm", "zh": "窦性心律", "en": "Sinus rhythm", "source": "machine"}]
    assert without_disclaimer(statements) == statements[1:]
