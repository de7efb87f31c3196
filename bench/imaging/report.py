"""Ratios against the targets and the Markdown page of a run."""

from __future__ import annotations

from typing import Any

OURS, ORTHANC, DIRECT = "ours (gateway)", "Orthanc", "ours (service)"


def _find(rows: list[dict[str, Any]], **keys: Any) -> dict[str, Any] | None:
    for r in rows:
        if all(r.get(k) == v for k, v in keys.items()):
            return r
    return None


def _p50(sbs: dict[str, Any], label: str, name: str, phase: str) -> float | None:
    e = sbs.get(label, {}).get(name, {}).get(phase, {})
    return e.get("p50_ms") if e.get("available") else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def ratios(result: dict[str, Any]) -> list[dict[str, Any]]:
    """ours/Orthanc per measurement with the target and whether it is met (gateway figures; service in brackets)."""
    sbs = result.get("side_by_side", {})
    out: list[dict[str, Any]] = []

    def add(metric: str, ours: float | None, theirs: float | None, target: str, higher_better: bool,
            threshold: float, direct: float | None = None) -> None:
        r = _ratio(ours, theirs)
        met = None if r is None else (r >= threshold if higher_better else r <= threshold)
        out.append({"metric": metric, "ours": ours, "orthanc": theirs, "ratio_ours_over_orthanc": r,
                    "ours_service_direct": direct, "ratio_service_direct": _ratio(direct, theirs),
                    "target": target, "met": met})

    for row in sbs.get("stow", []):
        if row["target"] != OURS:
            continue
        o = _find(sbs["stow"], target=ORTHANC, kind=row["kind"], clients=row["clients"])
        add(f"STOW-RS {row['kind']} c={row['clients']} (instances/s)", row["instances_per_s"],
            o and o["instances_per_s"], ">= 1.5x", True, 1.5)
    for row in sbs.get("qido", []):
        if row["target"] != OURS:
            continue
        o = _find(sbs["qido"], target=ORTHANC, query=row["query"], clients=row["clients"])
        d = _find(sbs["qido"], target=DIRECT, query=row["query"], clients=row["clients"])
        add(f"QIDO-RS {row['query']} c={row['clients']} (p50 ms)", row["p50_ms"], o and o["p50_ms"], "<= 1.0x",
            False, 1.0, d and d["p50_ms"])
    for row in sbs.get("wado", []):
        if row["target"] != OURS:
            continue
        o = _find(sbs["wado"], target=ORTHANC, clients=row["clients"])
        d = _find(sbs["wado"], target=DIRECT, clients=row["clients"])
        add(f"WADO-RS series c={row['clients']} (MB/s)", row["mb_per_s"], o and o["mb_per_s"], ">= 1.0x", True, 1.0,
            d and d["mb_per_s"])
    for label, target in (("rendered", "<= 1.0x"), ("rendered on demand", "<= 1.0x"),
                          ("thumbnail", "none (Orthanc has no thumbnails)")):
        for phase in ("cold", "warm"):
            add(f"{label} JPEG, {phase} (p50 ms)", _p50(sbs, label, OURS, phase), _p50(sbs, label, ORTHANC, phase),
                target, False, 1e9 if label == "thumbnail" else 1.0, _p50(sbs, label, DIRECT, phase))
    for q in result.get("scale", {}).get("queries", []):
        if q["clients"] == 1 and not q["query"].startswith("floor"):
            out.append({"metric": f"scale QIDO {q['query']} {q['target']} c=1 (p50 ms)", "ours": q["p50_ms"],
                        "orthanc": None, "ratio_ours_over_orthanc": None, "target": "p50 <= 20 ms",
                        "met": q["p50_ms"] is not None and q["p50_ms"] <= 20})
    return out


def _f(v: Any, digits: int = 1) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def render(result: dict[str, Any]) -> str:
    m, v, ds = result["machine"], result["versions"], result["data_set"]
    sbs = result.get("side_by_side", {})
    lines = [
        "# Imaging benchmark: our DICOMweb archive side by side with Orthanc",
        "",
        f"Run {result['started']} → {result['finished']} (`python -m bench.imaging`, `make bench-imaging`).",
        f"Machine: {m['cpu']}, {m['cores']} cores shared by the client, both archives, PostgreSQL and Redis (and other "
        f"people's work on this machine); Python {m['python']}, Linux {m['kernel']}.",
        f"Load average (1/5/15 min) before: {' / '.join(map(str, m['load_average_before']))}; after: "
        f"{' / '.join(map(str, m['load_average_after']))}. The machine was not idle: compare rows of this run, "
        "not runs of different days.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        f"Data set (pydicom, identical bytes to both): {ds['ct_studies']} CT studies x {ds['ct_instances_per_study']} "
        f"instances 512x512 16-bit (Explicit VR Little Endian, ~525 kB each) + {ds['filler_studies']} filler "
        f"studies of one 64x64 instance; {ds['bytes'] / 1e6:,.0f} MB in all.",
        "Client: httpx (asyncio), HTTP/1.1, loopback; the same code for both. \"ours (gateway)\" is what users get "
        "(token check, rate limit, proxy, then the imaging service); \"ours (service)\" is the imaging service "
        "called directly. Orthanc: its defaults (SQLite index, storage on the same disk), DICOM server off, "
        "authentication off. Ours: the imaging service with "
        f"{result.get('imaging_workers', 1)} uvicorn worker process(es), the gateway with one.",
        "",
        "## Ratios (ours through the gateway / Orthanc)",
        "",
        "| metric | ours | Orthanc | ratio | ours, service direct | target | met |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for r in result.get("ratios", []):
        if r["metric"].startswith("scale"):
            continue
        met = {True: "yes", False: "**no**", None: "–"}[r["met"]]
        lines.append(f"| {r['metric']} | {_f(r['ours'])} | {_f(r['orthanc'])} | {_f(r['ratio_ours_over_orthanc'], 2)} "
                     f"| {_f(r.get('ours_service_direct'))} | {r['target']} | {met} |")
    lines += ["", "## STOW-RS (10 instances per request)", "",
              "| target | instances | clients | instances/s | MB/s | s | server CPU ms/instance | CPU ms/instance by "
              "process | HTTP statuses |",
              "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in sbs.get("stow", []):
        lines.append(f"| {r['target']} | {r['instances']} {r['kind']} | {r['clients']} | {_f(r['instances_per_s'])} | "
                     f"{_f(r['mb_per_s'])} | {_f(r['seconds'], 2)} | {_f(r['server_cpu_ms_per_instance'], 2)} | "
                     f"{r.get('cpu_ms_per_instance_by_process', '')} | {r['statuses']} |")
    lines += ["", "Server CPU: CPU time of the Orthanc process, or of the imaging service (all its worker processes) "
              "+ gateway processes "
              "(PostgreSQL's work not included; it is shown apart: the postmaster and its backends), divided by the "
              "instances stored.", "",
              "## QIDO-RS (studies level, application/dicom+json)", "",
              "| target | query | clients | n | p50 ms | p95 ms | p50 of each round | studies matched (sum) "
              "| statuses |",
              "|---|---|---:|---:|---:|---:|---|---:|---|"]
    for r in sbs.get("qido", []):
        lines.append(f"| {r['target']} | {r['query']} | {r['clients']} | {r['n']} | {_f(r['p50_ms'])} | "
                     f"{_f(r['p95_ms'])} | {r.get('p50_rounds')} | {_f(r['matches_total'])} | {r['statuses']} |")
    lines += ["", "## WADO-RS series retrieve (multipart/related; type=application/dicom)", "",
              "| target | clients | retrieves | MB | s | MB/s | MB/s of each round | parts | statuses |",
              "|---|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in sbs.get("wado", []):
        lines.append(f"| {r['target']} | {r['clients']} | {r['retrieves']} | {r['bytes'] / 1e6:,.0f} | "
                     f"{_f(r['seconds'], 2)} | {_f(r['mb_per_s'])} | {r.get('mb_per_s_rounds')} | {r['parts']} "
                     f"| {r['statuses']} |")
    lines += ["", "## Rendered JPEG and thumbnails (instance level, one client; the targets take turns request "
              "by request, so each sees the same moments of the machine's load)", "",
              "Our service caches every rendition in object storage: each target gets its own 30 CT instances "
              "(cold: first view), then asks for them again (warm). Orthanc renders every time. \"rendered\" is the "
              "instance's /rendered with default options, which is also what our viewer asks for first "
              "(frames/1/rendered?quality=90, the same cache entry). "
              + ("In this run STOW-RS prerendered it into the cache in the background after answering "
                 "(IMAGING_PRERENDER_FIRST_FRAME), so our \"cold\" is a cache hit. "
                 if result.get("prerender_first_frame") else
                 "Prerendering at ingest was off (the default), so our cold is a real render. ")
              + "\"rendered on demand\" asks for quality=89, which nothing prerenders.", "",
              "| what | target | cache | n | p50 ms | p95 ms | statuses |", "|---|---|---|---:|---:|---:|---|"]
    for label in ("rendered", "rendered on demand", "thumbnail"):
        for name, entry in sbs.get(label, {}).items():
            for phase, s in entry.items():
                if s.get("available"):
                    lines.append(f"| {label} | {name} | {phase} | {s['n']} | {_f(s['p50_ms'])} | {_f(s['p95_ms'])} "
                                 f"| {s['statuses']} |")
                else:
                    lines.append(f"| {label} | {name} | {phase} | – | n/a | n/a | not available: {s['statuses']} |")
    sc = result.get("scale")
    if sc:
        lines += ["", "## Scale run: 1,000,000 instances in the index", "",
                  f"Rows written with SQL (owner connection; no files behind them): {sc['rows']}; imaging schema "
                  f"{sc['imaging_schema_size']} with indexes; fill took {sc['fill_seconds']} s ({sc['seconds']}). "
                  f"{sc['facilities']} facilities (the demo region's 6 imaging facilities weighted hospital 20 %, "
                  "township 5 %, village 1 %, plus 18 stand-in facilities sharing the rest), about 2 studies "
                  "per patient, 20 instances in 2 series per study, study dates over 4 years "
                  f"(2021–2024). tech_a (城关镇卫生院) may see {sc['tech_a_facility_instances']:,} of them; row-level "
                  "security applies (th_app role). Each query 40 times with distinct keys that have matches; "
                  "the side-by-side data set is in the index too.", "",
                  "| target | query | clients | n | p50 ms | p95 ms | p50 of each round | studies matched (sum) "
                  "| example | target p50 <= 20 ms |",
                  "|---|---|---:|---:|---:|---:|---|---:|---|---|"]
        for q in sc["queries"]:
            met = "yes" if q["p50_ms"] is not None and q["p50_ms"] <= 20 else "**no**"
            if q["query"].startswith("floor"):
                met = "–"
            lines.append(f"| {q['target']} | {q['query']} | {q['clients']} | {q['n']} | {_f(q['p50_ms'])} | "
                         f"{_f(q['p95_ms'])} | {q.get('p50_rounds')} | {_f(q['matches_total'])} | `{q['example']}` "
                         f"| {met} |")
    before = result.get("before")
    if before:
        old = {r["metric"]: r for r in before.get("ratios", [])}
        lines += ["", "## Before and after (ratios ours/Orthanc, each measured in its own side-by-side run)", "",
                  f"Before: {before.get('label', '')}", "",
                  "| metric | before: ours | before: Orthanc | before: ratio | now: ours | now: Orthanc | now: ratio |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in result.get("ratios", []):
            b = old.get(r["metric"])
            if b is None or r["metric"].startswith("scale"):
                continue
            lines.append(f"| {r['metric']} | {_f(b['ours'])} | {_f(b['orthanc'])} | "
                         f"{_f(b['ratio_ours_over_orthanc'], 2)} | {_f(r['ours'])} | {_f(r['orthanc'])} | "
                         f"{_f(r['ratio_ours_over_orthanc'], 2)} |")
    missed = [r["metric"] for r in result.get("ratios", []) if r["met"] is False]
    lines += ["", "## Targets missed", ""]
    lines += [f"- {m}" for m in missed] if missed else ["- none"]
    notes = result.get("notes")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
