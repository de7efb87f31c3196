"""Interpretation statements in Chinese and English (machine-generated, awaiting physician confirmation)."""

from __future__ import annotations

from services.ecg.analysis.models import Analysis, Statement

_RHYTHM: dict[str, tuple[str, str]] = {
    "sinus_rhythm": ("Sinus rhythm", "窦性心律"),
    "sinus_bradycardia": ("Sinus bradycardia", "窦性心动过缓"),
    "sinus_tachycardia": ("Sinus tachycardia", "窦性心动过速"),
    "bradycardia": ("Bradycardia, P waves not identified", "心动过缓(未见明确P波)"),
    "tachycardia": ("Tachycardia, P waves not identified", "心动过速(未见明确P波)"),
    "regular_rhythm_no_p": ("Regular rhythm, P waves not identified", "节律规整,未见明确P波"),
    "atrial_fibrillation": ("Atrial fibrillation / flutter", "心房颤动/心房扑动"),
    "paced": ("Paced rhythm", "起搏心律"),
    "ventricular_tachycardia": ("Ventricular tachycardia", "室性心动过速"),
    "ventricular_fibrillation": ("Ventricular fibrillation / flutter pattern", "心室颤动/扑动图形"),
    "third_degree_av_block": ("Third-degree AV block", "三度房室传导阻滞"),
    "asystole": ("Asystole", "心脏停搏"),
    "undetermined_noise": ("Rhythm undetermined: poor signal quality", "信号质量差,节律无法判定"),
    "undetermined": ("Rhythm undetermined", "节律无法判定"),
}


def interpret(a: Analysis) -> list[Statement]:
    out: list[Statement] = [Statement("machine_generated", a.disclaimer_en, a.disclaimer_zh)]
    q = a.quality
    bad = [ld["lead"] for ld in q.get("leads", []) if not ld["usable"]]
    if bad:
        out.append(Statement("poor_leads", f"Unusable lead(s): {', '.join(bad)}", f"导联信号不可用:{'、'.join(bad)}"))
    rh = a.rhythm
    en, zh = _RHYTHM.get(str(rh.get("rhythm")), ("Rhythm undetermined", "节律无法判定"))
    hr = a.rr.get("hr_bpm")
    if hr:
        en, zh = f"{en}, ventricular rate {hr:.0f}/min", f"{zh},心室率 {hr:.0f} 次/分"
    iv12 = a.intervals if int(q.get("n_usable", 0)) >= 8 else {}  # axes need the limb leads
    axes = [iv12.get(k) for k in ("p_axis", "qrs_axis", "t_axis")]
    inverted = all(x is not None and -180 <= x < -90 for x in axes)
    p_axis = axes[0]
    if str(rh.get("rhythm", "")).startswith("sinus") and p_axis is not None and not -30 <= p_axis <= 105:
        # A sinus P wave is upright in I and II; a P axis outside that is not sinus, whatever its rate.
        en, zh = f"Ectopic atrial rhythm (P axis {p_axis:.0f}°)", f"异位房性心律(P电轴 {p_axis:.0f}°)"
        out.append(Statement("rhythm_ectopic_atrial", en + (f", rate {hr:.0f}/min" if hr else ""),
                             zh + (f",心率 {hr:.0f} 次/分" if hr else "")))
    else:
        out.append(Statement(f"rhythm_{rh.get('rhythm')}", en, zh))
    if inverted:
        out.append(Statement(
            "check_electrodes",
            "P, QRS and T axes all point away from normal: check electrode placement (limb-lead reversal) "
            "or an inverted signal before interpreting",
            "P、QRS、T 电轴均指向异常象限：请先检查电极位置（肢体导联反接）或信号是否倒置",
        ))
    if str(rh.get("rhythm", "")).startswith("undetermined"):
        return out
    counts = a.beats.get("counts", {})
    if counts.get("V"):
        out.append(Statement("pvc", f"Ventricular premature beats ({counts['V']})", f"室性早搏({counts['V']}次)"))
    if counts.get("S"):
        out.append(
            Statement("pac", f"Supraventricular premature beats ({counts['S']})", f"房性/交界性早搏({counts['S']}次)")
        )
    for e in rh.get("episodes", []):
        if e["kind"] == "pause":
            dur = e["end_s"] - e["start_s"]
            out.append(Statement("pause", f"Pause {dur:.1f} s", f"长间歇 {dur:.1f} 秒"))
        elif e["kind"] in ("vt_run", "ventricular_run"):
            out.append(
                Statement(e["kind"], f"Run of {e['beats']} ventricular beats", f"短阵室性心动过速({e['beats']}个)")
            )
    iv = a.intervals if int(q.get("n_usable", 0)) >= 3 else {}  # 1-2 lead (Holter) widths are not diagnostic
    pr, qrs, qtc = iv.get("pr_ms"), iv.get("qrs_ms"), iv.get("qtc_ms")
    if pr is not None and pr > 200 and not rh.get("af"):
        out.append(
            Statement("av_block_1", f"First-degree AV block (PR {pr:.0f} ms)", f"一度房室传导阻滞(PR {pr:.0f} ms)")
        )
    if pr is not None and pr < 120 and not rh.get("af"):
        out.append(Statement("short_pr", f"Short PR interval ({pr:.0f} ms)", f"PR间期缩短({pr:.0f} ms)"))
    if qrs is not None and qrs >= 120 and rh.get("rhythm") != "paced":
        out.append(
            Statement(
                "wide_qrs",
                f"Wide QRS ({qrs:.0f} ms): intraventricular conduction delay / bundle-branch block",
                f"QRS增宽({qrs:.0f} ms):室内传导延迟/束支传导阻滞",
            )
        )
    if qtc is not None and qtc > 470:
        out.append(Statement("long_qtc", f"Prolonged QTc ({qtc:.0f} ms, Bazett)", f"QTc延长({qtc:.0f} ms,Bazett)"))
    ax = iv.get("qrs_axis")
    if ax is not None:
        if -90 <= ax < -30:
            out.append(Statement("lad", f"Left axis deviation ({ax:.0f}°)", f"电轴左偏({ax:.0f}°)"))
        elif 90 < ax <= 180:
            out.append(Statement("rad", f"Right axis deviation ({ax:.0f}°)", f"电轴右偏({ax:.0f}°)"))
        elif ax < -90 and not inverted:
            out.append(Statement("extreme_axis", f"Extreme axis ({ax:.0f}°)", f"电轴极度偏移({ax:.0f}°)"))
    st = a.stemi
    if st.get("flag"):
        leads = ", ".join(st.get("leads", []))
        out.append(
            Statement(
                "stemi",
                f"ST elevation in {leads}: consider acute STEMI",
                f"{leads} 导联ST段抬高,提示急性ST段抬高型心肌梗死",
            )
        )
    else:
        dep = [lead for lead, v in a.st.items() if v["st_j60_mv"] <= -0.1]
        if len(dep) >= 2:
            out.append(
                Statement("st_depression", f"ST depression in {', '.join(dep)}", f"{'、'.join(dep)} 导联ST段压低")
            )
    if len(out) == 2 and rh.get("rhythm") == "sinus_rhythm":
        out.append(Statement("normal", "Normal ECG", "正常心电图"))
    for f in a.critical:
        out.append(Statement(f"critical_{f.code}", f"CRITICAL: {f.en}", f"危急值:{f.zh}"))
    return out
