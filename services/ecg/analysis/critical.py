"""Critical values (危急值) from an Analysis, gated by signal quality.

One finding per condition; a more specific finding suppresses the generic rate alert it implies (VT over
tachycardia, AF with rapid response over tachycardia, asystole/pause and complete AV block over bradycardia),
so each clinical event reaches the reader once.  Nothing is raised from a trace whose quality does not
support the claim: rhythm alerts need a trustworthy beat series (template SQI), morphology alerts (STEMI,
QTc) need a clean median beat from enough usable leads.
"""

from __future__ import annotations

from typing import Any

from services.ecg.analysis.models import Analysis, CriticalFinding

HR_LOW = 40.0
HR_HIGH = 180.0
AF_RVR_HR = 150.0
PAUSE_S = 3.0
QTC_MS = 500.0
VT_MIN_BEATS = 8
SQI_RHYTHM = 0.8
MIN_LEADS_MORPHOLOGY = 3


def _rhythm_trusted(a: Analysis) -> bool:
    q = a.quality
    return bool(q.get("usable_leads")) and float(a.rhythm.get("sqi", 0.0)) >= SQI_RHYTHM and not q.get("noisy_record")


def critical_values(a: Analysis) -> list[CriticalFinding]:
    """The critical findings of an analysis (empty when the trace cannot support any).

    For a long-record summary (`analyze_long`) the findings were raised window by window, where the evidence
    was, and are returned as collected (with their time): the summary's averages cannot re-derive them."""
    if a.summary is not None:
        return list(a.critical)
    out: list[CriticalFinding] = []
    q: dict[str, Any] = a.quality
    rh: dict[str, Any] = a.rhythm
    if not q.get("usable_leads"):
        return out
    hr = a.rr.get("hr_bpm")
    trusted = _rhythm_trusted(a)
    # VF / VT -----------------------------------------------------------------------------------------
    vf_s = float(rh.get("vf_seconds", 0.0))
    vt_runs = [e for e in rh.get("episodes", []) if e["kind"] == "vt_run" and e["beats"] >= VT_MIN_BEATS]
    vt_rhythm = rh.get("rhythm") == "ventricular_tachycardia"
    has_vt = False
    if vf_s >= 4.0 and not q.get("lead_off_any_all", False):
        out.append(
            CriticalFinding(
                "vf_vt", "Ventricular fibrillation / flutter pattern", "心室颤动/扑动", vf_s, "s", {"vf_seconds": vf_s}
            )
        )
        has_vt = True
    elif trusted and (vt_runs or vt_rhythm):
        run = max(vt_runs, key=lambda e: e["beats"]) if vt_runs else None
        rate = run["rate_bpm"] if run else hr
        out.append(
            CriticalFinding(
                "vf_vt",
                "Ventricular tachycardia",
                "室性心动过速",
                rate,
                "bpm",
                {"run": run},
                run["start_s"] if run else None,
            )
        )
        has_vt = True
    # asystole / pause ------------------------------------------------------------------------------------
    pause = float(rh.get("longest_pause_s", 0.0))
    asystole = rh.get("rhythm") == "asystole"
    has_pause = False
    if not has_vt and (asystole or (pause > PAUSE_S and trusted)):
        en = "Asystole" if asystole else f"Pause of {pause:.1f} s"
        zh = "心脏停搏" if asystole else f"长间歇 {pause:.1f} 秒"
        out.append(CriticalFinding("asystole_pause", en, zh, pause, "s", {"longest_pause_s": pause}))
        has_pause = True
    # complete AV block ----------------------------------------------------------------------------------
    has_avb = False
    if trusted and rh.get("av_block_3") and not has_vt:
        out.append(
            CriticalFinding(
                "av_block_3",
                "Third-degree (complete) AV block",
                "三度房室传导阻滞",
                hr,
                "bpm",
                {"atrial_rate_bpm": rh.get("atrial_rate_bpm")},
            )
        )
        has_avb = True
    # AF with rapid ventricular response ----------------------------------------------------------------------
    has_rvr = False
    if trusted and rh.get("af") and hr is not None and hr >= AF_RVR_HR and not has_vt:
        out.append(
            CriticalFinding(
                "af_rvr",
                f"Atrial fibrillation with rapid ventricular response ({hr:.0f}/min)",
                f"心房颤动伴快速心室率({hr:.0f}次/分)",
                hr,
                "bpm",
            )
        )
        has_rvr = True
    # rate ------------------------------------------------------------------------------------------------
    if trusted and hr is not None:
        if hr < HR_LOW and not (has_pause or has_avb or has_vt):
            out.append(
                CriticalFinding(
                    "bradycardia", f"Severe bradycardia ({hr:.0f}/min)", f"严重心动过缓({hr:.0f}次/分)", hr, "bpm"
                )
            )
        elif hr > HR_HIGH and not (has_vt or has_rvr):
            out.append(
                CriticalFinding(
                    "tachycardia", f"Extreme tachycardia ({hr:.0f}/min)", f"极速心动过速({hr:.0f}次/分)", hr, "bpm"
                )
            )
    # morphology: STEMI, QTc -------------------------------------------------------------------------------------
    morph_ok = (
        int(q.get("n_usable", 0)) >= MIN_LEADS_MORPHOLOGY
        and int(a.intervals.get("n_beats_median") or 0) >= 3
        and float(a.intervals.get("median_sqi", 0.0)) >= SQI_RHYTHM
        and not has_vt
    )
    if morph_ok and a.stemi.get("flag"):
        leads = ", ".join(a.stemi.get("leads", []))
        out.append(
            CriticalFinding(
                "stemi",
                f"ST-elevation MI pattern ({leads})",
                f"急性ST段抬高型心肌梗死图形({leads})",
                None,
                None,
                {"leads": a.stemi.get("leads"), "territories": a.stemi.get("territories")},
            )
        )
    qtc = a.intervals.get("qtc_ms")
    qrs = a.intervals.get("qrs_ms")
    if (
        morph_ok
        and qtc is not None
        and qtc > QTC_MS
        and (qrs is None or qrs < 130)
        and not rh.get("af")
        and hr is not None
        and hr <= 110
    ):
        out.append(
            CriticalFinding(
                "qtc_prolonged",
                f"QTc {qtc:.0f} ms (> {QTC_MS:.0f} ms)",
                f"QTc 显著延长 {qtc:.0f} 毫秒",
                qtc,
                "ms",
                {"qt_ms": a.intervals.get("qt_ms"), "rr_ms": a.intervals.get("rr_ms")},
            )
        )
    return out
