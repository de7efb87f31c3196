"""Markdown and JSON output of the ECG benchmark, with the machine description."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "results"


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    vers = {}
    for pkg in ("numpy", "scipy", "wfdb", "neurokit2"):
        try:
            vers[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            vers[pkg] = None
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "loadavg_at_end": list(os.getloadavg()),
        "packages": vers,
        "note": "shared 2-core machine, other work running; one benchmark process",
    }


def _p(v: float | None) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def _n(v: Any, fmt: str = "{:.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    out = [
        "# ECG analysis benchmark (dev set ../shared/data/ecg)",
        "",
        f"Generated {m['date_utc']} UTC by `python -m bench.ecg` on {m['cpu']} ({m['cpus']} CPUs, shared), "
        f"Python {m['python']}, " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + ".",
        f"Load average at the end: {', '.join(f'{x:.2f}' for x in m['loadavg_at_end'])}. "
        f"Wall time {res['wall_seconds']:.0f} s.",
        "",
        "## QRS detection",
        "",
        "Match window +-150 ms, beat symbols `NLRBAaJSVrFejnE/fQ?` only, whole records (no learning skip). "
        "Peers and `ours_first_lead` get the first channel (LUDB: lead I scored with its own marks inside its "
        "annotated span; ISHNE: lead I, X marks don't-care); `ours_all_leads` fuses every lead of the record.",
        "",
        "### Gross",
        "",
        "| set | method | ref | TP | FN | FP | Se % | +P % | F1 % | s/h (this single pass; see Speed) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for g in sorted(res["qrs"]["gross"], key=lambda r: (r["group"] != "target", -r["f1"])):
        label = "MIT-BIH + SVDB (target)" if g["group"] == "target" else "all 10 records"
        out.append(
            f"| {label} | {g['method']} | {g['n_ref']} | {g['tp']} | {g['fn']} | {g['fp']} | {_p(g['se'])} | "
            f"{_p(g['ppv'])} | {_p(g['f1'])} | {g['s_per_hour']:.3f} |"
        )
    out += [
        "",
        "### Per record",
        "",
        "| record | fs | leads | method | ref | TP | FN | FP | Se % | +P % | F1 % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["qrs"]["rows"]:
        err = f" ({r['error']})" if r["error"] else ""
        out.append(
            f"| {r['record']} | {r['fs']:.0f} | {r['leads']} | {r['method']}{err} | {r['n_ref']} | {r['tp']} | "
            f"{r['fn']} | {r['fp']} | {_p(r['se'])} | {_p(r['ppv'])} | {_p(r['f1'])} |"
        )
    bc = res["beat_classes"]
    out += [
        "",
        "## Beat classes (AAMI, matched beats of 100, 101, 208, 800)",
        "",
        "| reference \\ ours | " + " | ".join("NSVPQ") + " |",
        "|---|---|---|---|---|---|",
    ]
    for ref, row in sorted(bc["confusion"].items()):
        out.append(f"| {ref} | " + " | ".join(str(row.get(c, 0)) for c in "NSVPQ") + " |")
    out.append("")
    out.append(
        f"S: Se {_p(bc['S']['se'])} %, +P {_p(bc['S']['ppv'])} %; V: Se {_p(bc['V']['se'])} %, "
        f"+P {_p(bc['V']['ppv'])} % (fusion F beats labelled V count against V +P)."
    )
    iv = res["intervals"]
    out += [
        "",
        "## Global intervals vs LUDB cardiologists",
        "",
        "Reference per beat: the second-earliest onset and second-latest offset over the 12 leads (one "
        "outlying lead annotation does not set it); `strict` uses the very earliest / latest. Median over "
        "beats. Ours: global delineation of the 12-lead median beat. `nk_dwt`: neurokit2 DWT on lead II.",
        "",
        "| record | diagnosis | PR ours / ref / strict | QRS ours / ref / strict | QT ours / ref / strict | "
        "nk_dwt PR/QRS/QT |",
        "|---|---|---|---|---|---|",
    ]
    for r in iv["rows"]:
        nk = r["nk_dwt"]
        out.append(
            f"| {r['record']} | {r['diagnosis']} | "
            + " | ".join(
                f"{_n(r[k])} / {_n(r['ref_' + k])} / {_n(r['ref_strict_' + k])}" for k in ("pr_ms", "qrs_ms", "qt_ms")
            )
            + f" | {_n(nk.get('pr_ms'))} / {_n(nk.get('qrs_ms'))} / {_n(nk.get('qt_ms'))} |"
        )
    out += [
        "",
        "| reference | interval | n | mean diff ms | SD ms | tolerance (mean / SD) | within | nk_dwt mean / SD |",
        "|---|---|---|---|---|---|---|---|",
    ]
    tol = {"pr_ms": (10, 10), "qrs_ms": (10, 10), "qt_ms": (25, 30)}
    for label in ("second_extreme", "strict_extreme"):
        for k in ("pr_ms", "qrs_ms", "qt_ms"):
            s = iv["summary"][f"{label}:{k}"]
            nk = iv["summary"][f"{label}:nk_dwt:{k}"]
            ok = s["mean"] is not None and s["sd"] is not None and abs(s["mean"]) <= tol[k][0] and s["sd"] <= tol[k][1]
            out.append(
                f"| {label} | {k[:-3].upper()} | {s['n']} | {_n(s['mean'], '{:+.1f}')} | {_n(s['sd'], '{:.1f}')} | "
                f"{tol[k][0]} / {tol[k][1]} | {'yes' if ok else 'NO'} | {_n(nk['mean'], '{:+.1f}')} / "
                f"{_n(nk['sd'], '{:.1f}')} |"
            )
    if iv["devices"]:
        out += [
            "",
            "### Next to the carts' own measurements (format samples)",
            "",
            "| file | PR ours / cart | QRS ours / cart | QT ours / cart | QRS axis ours / cart | our critical | "
            "cart statements |",
            "|---|---|---|---|---|---|---|",
        ]
        for d in iv["devices"]:
            if "error" in d:
                out.append(f"| {d['file']} | {d['error']} | | | | | |")
                continue
            out.append(
                f"| {d['file']} | {_n(d['ours_pr_ms'])} / {_n(d['dev_pr_ms'])} | {_n(d['ours_qrs_ms'])} / "
                f"{_n(d['dev_qrs_ms'])} | {_n(d['ours_qt_ms'])} / {_n(d['dev_qt_ms'])} | "
                f"{_n(d['ours_qrs_axis'])} / {_n(d['dev_qrs_axis'])} | {', '.join(d['ours_critical']) or '-'} | "
                f"{'; '.join(d['dev_statements'])[:120]} |"
            )
    c = res["cinc2017"]
    out += [
        "",
        "## Rhythm on CinC 2017 (100 dev records)",
        "",
        "| reference \\ ours | N | A | O | ~ |",
        "|---|---|---|---|---|",
    ]
    for cls, row in zip(c["classes"], c["confusion"], strict=True):
        out.append(f"| {cls} | " + " | ".join(str(v) for v in row) + " |")
    out += [
        "",
        f"**AF F1 {c['af_f1']:.3f}** (target >= 0.90). F1 N {c['f1']['N']:.3f}, O {c['f1']['O']:.3f}, "
        f"noisy {c['f1']['~']:.3f}; CinC score (mean F1 of N, A, O) {c['cinc_score_nao']:.3f}.",
    ]
    cr = res["critical"]
    out += [
        "",
        f"## Critical values on scenario traces ({cr['passed']}/{cr['total']} as expected)",
        "",
        "Built from a real LUDB beat (bench/ecg/synth.py); VF is a modelled 4-6 Hz oscillation.",
        "",
        "| scenario | expected | raised | rhythm | quality |",
        "|---|---|---|---|---|",
    ]
    for r in cr["rows"]:
        out.append(
            f"| {r['scenario']} | {r['expected'] or 'none'} | {', '.join(r['got']) or 'none'} | "
            f"{r['rhythm']} | {r['quality']} |"
        )
    sp = res["speed"]
    d = sp["detection_s_per_hour"]
    a = sp["analyze_12lead_10s_ms"]
    out += [
        "",
        "## Speed (one process)",
        "",
        "| detector (MIT-BIH + SVDB, 2 h of signal) | s per hour of signal |",
        "|---|---|",
    ]
    out += [f"| {k} | {v:.3f} |" for k, v in d.items()]
    out += [
        "",
        f"nk pantompkins1985 / ours: {sp['ratio_nk_pt_over_ours_first_lead']:.2f}x on one lead, "
        f"{sp['ratio_nk_pt_over_ours_all_leads']:.2f}x with ours fusing both leads (> 1 means ours is faster).",
        "",
        f"Full `analyze()` of a 12-lead 10 s LUDB record (500 Hz), {a['n']} runs: wall p50 **{a['p50']:.1f} ms**, "
        f"p90 {a['p90']:.1f} ms, max {a['max']:.1f} ms; CPU-time p50 **{a['cpu_p50']:.1f} ms** "
        "(target p50 <= 50 ms). Load average during the speed runs: "
        + ", ".join(f"{v:.2f}" for v in sp["loadavg_during"])
        + " on 2 cores (wall time includes waiting for a core).",
        "",
    ]
    return "\n".join(out)


def write(res: dict[str, Any]) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    res = {"machine": machine(), **res}
    md = RESULTS / "ecg.md"
    js = RESULTS / "ecg.json"
    md.write_text(markdown(res), encoding="utf-8")
    js.write_text(json.dumps(res, indent=1, ensure_ascii=False, default=_default), encoding="utf-8")
    return md, js


def _default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)
