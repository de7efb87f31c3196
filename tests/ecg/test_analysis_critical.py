"""Critical values (危急值): each scenario raises exactly one alert; artefact and benign rhythms raise none.

Scenarios are laid out from a real 12-lead beat (bench/ecg/synth.py, shared with the benchmark); VF is a
modelled oscillation.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.ecg import synth as S
from bench.ecg.data import DATA_DIR
from services.ecg.analysis import analyze, critical_values

pytestmark = pytest.mark.skipif(not (DATA_DIR / "ludb").exists(), reason="shared ECG data set not present")

CRITICAL = sorted(k for k, (code, _f) in S.SCENARIOS.items() if code)
QUIET = sorted(k for k, (code, _f) in S.SCENARIOS.items() if not code)


@pytest.mark.parametrize("name", CRITICAL)
def test_scenario_raises_exactly_one_alert(name: str) -> None:
    code, make = S.SCENARIOS[name]
    a = analyze(make())
    codes = [f.code for f in a.critical]
    assert codes == [code], (name, codes, a.rhythm["rhythm"], a.rr.get("hr_bpm"))
    f = a.critical[0]
    assert f.en and f.zh
    assert any(s.code == f"critical_{f.code}" for s in a.statements)
    assert [c.code for c in critical_values(a)] == codes  # the rule is a pure function of the analysis


@pytest.mark.parametrize("name", QUIET)
def test_artefact_and_benign_rhythms_raise_none(name: str) -> None:
    a = analyze(S.SCENARIOS[name][1]())
    assert a.critical == [], (name, [f.code for f in a.critical])


def test_details_of_the_alerts() -> None:
    vt = analyze(S.SCENARIOS["ventricular tachycardia 165/min"][1]())
    assert vt.rhythm["rhythm"] == "ventricular_tachycardia"
    st = analyze(S.SCENARIOS["anterior STEMI (V2-V4 +0.35 mV)"][1]())
    assert set(st.stemi["leads"]) >= {"V2", "V3"} and "septal" in st.stemi["territories"]
    assert st.st["V3"]["st_j60_mv"] > 0.2 and abs(st.st["II"]["st_j60_mv"]) < 0.1
    av = analyze(S.SCENARIOS["complete AV block (A 80, V 36)"][1]())
    assert av.rhythm["atrial_rate_bpm"] == pytest.approx(80, abs=6)
    pause = analyze(S.SCENARIOS["pause 4.8 s"][1]())
    assert pause.critical[0].value == pytest.approx(4.8, abs=0.1)


def test_noise_and_lead_off_are_reported_as_quality() -> None:
    noisy = analyze(S.SCENARIOS["muscle noise + motion spikes"][1]())
    assert noisy.quality["overall"] in ("poor", "unusable")
    moved = analyze(S.SCENARIOS["motion artefact on 6 leads"][1]())
    assert moved.rhythm["rhythm"] == "sinus_rhythm"
    for n in (12, 6, 1):
        a = analyze(S.with_leads_off(S.build(10, S.regular(10, 72)), n))
        off = [q["lead"] for q in a.quality["leads"] if "lead_off" in q["problems"] or "flat_line" in q["problems"]]
        assert len(off) == n and a.critical == []


def test_disconnected_trace_is_not_asystole() -> None:
    """A flat line with no noise at all is a disconnected cable, not asystole."""
    a = analyze(S.Trace(500.0, S.LEADS, np.zeros((5000, 12))))
    assert a.critical == [] and a.quality["overall"] == "unusable"
