"""Imaging benchmark: our DICOMweb archive and Orthanc side by side on one generated data set, plus a scale run.

``python -m bench.imaging [--ct-studies 3] [--ct-instances 100] [--filler 2000] [--scale-instances 1000000]``

Side by side (same client code, httpx on loopback, 1 and 4 concurrent clients):
- Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``, installed with apt-get when missing), generated config:
  a free loopback HTTP port, RemoteAccessAllowed false, DICOM server off, authentication off, storage in a
  temporary directory;
- ours: a private PostgreSQL + Redis (infra/local/stack.py), migrations, the demo region, the imaging service and
  the gateway under uvicorn (the imaging service with --imaging-workers processes, 2 by default; the gateway
  one), as tech_a with a token from the gateway's /auth/token. "ours"
  figures go through the gateway; reads are also measured on the service directly.
Measured: STOW-RS instances/s (10 instances per request), QIDO-RS p50/p95 by PatientID and by StudyDate range,
WADO-RS series retrieve MB/s, rendered JPEG p50, thumbnail p50.

Scale run (after Orthanc is stopped): 1,000,000 instances written with SQL into the imaging index, then QIDO by
PatientID, StudyDate range and PatientName prefix through HTTP as tech_a (target p50 <= 20 ms).

Writes bench/results/imaging.md and imaging.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from importlib import metadata as md
from pathlib import Path
from typing import Any

import httpx

from bench.gateway.run import PIDS, infrastructure, machine, server
from bench.imaging import client, data, orthanc, scale
from bench.imaging.client import Target

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
USER, PASSWORD = "tech_a", "Demo@2026"


class Token:
    """A tech_a access token from the gateway's /auth/token, renewed before its 15 minutes run out."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self.value = ""
        self.at = 0.0

    def headers(self) -> dict[str, str]:
        if not self.value or time.monotonic() - self.at > 600:  # monotonic may start near 0 after boot
            r = httpx.post(f"{self.gateway}/auth/token", data={"grant_type": "password", "username": USER,
                                                               "password": PASSWORD}, timeout=30)
            r.raise_for_status()
            self.value, self.at = r.json()["access_token"], time.monotonic()
        return {"Authorization": f"Bearer {self.value}"}


def prepare(env: dict[str, str], var_dir: Path) -> None:
    os.environ.update(env)
    from common.config import reset_settings_cache
    from common.migrations import migrate
    from gateway.identity.keys import ensure_keys

    reset_settings_cache()
    asyncio.run(migrate(env["DATABASE_URL"]))
    ensure_keys(var_dir / "keys")

    async def seed() -> None:
        import asyncpg

        from gateway.identity.seed import seed_demo_region

        conn = await asyncpg.connect(env["DATABASE_URL"])
        try:
            async with conn.transaction():
                await seed_demo_region(conn)
        finally:
            await conn.close()

    asyncio.run(seed())


def versions(orthanc_binary: str, dsn: str) -> dict[str, str]:
    out = {"orthanc": orthanc.version(orthanc_binary)}
    for pkg in ("pydicom", "httpx", "uvicorn", "fastapi", "asyncpg", "numpy", "pylibjpeg", "Pillow"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    with contextlib.suppress(Exception):
        out["postgresql"] = subprocess.run(["psql", dsn, "-tAc", "SHOW server_version"], capture_output=True,
                                           text=True, timeout=20).stdout.strip()
    with contextlib.suppress(Exception):
        out["redis"] = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return out


def _cpu(names: list[str]) -> float:
    return sum(_cpu_of(n) for n in names)


def _cpu_of(name: str) -> float:
    """CPU seconds of one of our processes and all its children alive now (PostgreSQL, uvicorn workers)."""
    pid = PIDS.get(name)
    if not pid:
        return 0.0
    total = 0.0  # the process and its children (PostgreSQL's backends, uvicorn's worker processes)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid or int(stat.parent.name) == pid:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {msg}", flush=True)


def _qido_rounds(readers: dict[str, Target], queries: list[str], conc: int, repeat: int) -> dict[str, dict[str, Any]]:
    """The queries ``repeat`` times per target, targets interleaved; the round with the median p50 is kept."""
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in readers}
    for _ in range(repeat):
        for name, t in readers.items():
            rounds[name].append(asyncio.run(client.qido(t, queries, conc)).summary())
    out = {}
    for name, runs in rounds.items():
        chosen = sorted(runs, key=lambda r: r["p50_ms"] if r["p50_ms"] is not None else 1e9)[len(runs) // 2]
        out[name] = {**chosen, "p50_rounds": [round(r["p50_ms"], 1) for r in runs if r["p50_ms"] is not None]}
    return out


def side_by_side(ds: data.DataSet, targets: dict[str, Target], readers: dict[str, Target], seed: int,
                 cpu_groups: dict[str, list[str]], repeat: int, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    res: dict[str, Any] = {"stow": [], "qido": [], "wado": [], "rendered": {}, "thumbnail": {},
                           "rendered on demand": {}}
    ct_per_study = len(ds.ct) // max(1, len({i.study for i in ds.ct}))
    first_ct, rest_ct = ds.ct[:ct_per_study], ds.ct[ct_per_study:]
    half = len(ds.filler) // 2
    phases = [("CT 512x512", 1, first_ct), ("CT 512x512", 4, rest_ct),
              ("filler 64x64", 1, ds.filler[:half]), ("filler 64x64", 4, ds.filler[half:])]
    for kind, conc, insts in phases:
        if not insts:
            continue
        for name, t in targets.items():
            before = {p: _cpu_of(p) for p in cpu_groups[name]}
            r = asyncio.run(client.stow(t, insts, conc))
            by_process = {p: round((_cpu_of(p) - b) / r.instances * 1000, 2) for p, b in before.items()}
            cpu = sum(_cpu_of(p) - b for p, b in before.items() if p != "postgres")
            row = {"target": name, "kind": kind, "clients": conc, "instances": r.instances, "requests": r.requests,
                   "seconds": round(r.seconds, 2), "instances_per_s": round(r.instances_per_s, 1),
                   "mb_per_s": round(r.mb_per_s, 1), "failed_requests": r.failed_requests, "statuses": r.statuses,
                   "server_cpu_ms_per_instance": round(cpu / r.instances * 1000, 2) if cpu else None,
                   "cpu_ms_per_instance_by_process": by_process}
            res["stow"].append(row)
            log(f"STOW {name:14s} {kind} c={conc}: {r.instances_per_s:7.1f} inst/s {r.mb_per_s:6.1f} MB/s "
                f"statuses {r.statuses} server CPU {row['server_cpu_ms_per_instance']} ms/inst {by_process}")

    rng = random.Random(seed)
    pids = sorted(set(ds.filler_patients))
    by_pid = [f"studies?PatientID={p}" for p in rng.sample(pids, min(60, len(pids)))]
    starts = [rng.choice(ds.filler_dates) for _ in range(60)]
    by_date = [f"studies?StudyDate={d:%Y%m%d}-{d + timedelta(days=6):%Y%m%d}" for d in starts]
    for label, queries in (("PatientID", by_pid), ("StudyDate 7-day range", by_date)) if "qido" not in skip else ():
        for conc in (1, 4):
            for name, s in _qido_rounds(readers, queries, conc, repeat).items():
                res["qido"].append({"target": name, "query": label, "clients": conc, **s})
                log(f"QIDO {name:14s} {label} c={conc}: p50 {s['p50_ms']:.1f} p95 {s['p95_ms']:.1f} ms "
                    f"(p50 of each round {s['p50_rounds']}) statuses {s['statuses']} matches {s['matches_total']}")

    series = [(s, se) for s, se, _ in ds.ct_series()]
    for conc in (1, 4) if "wado" not in skip else ():
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in readers}
        for _ in range(repeat):
            for name, t in readers.items():
                w = asyncio.run(client.wado_series(t, series, conc, rounds=2 if conc == 1 else 4))
                rounds[name].append({"retrieves": w.retrieves, "bytes": w.bytes, "seconds": round(w.seconds, 2),
                                     "mb_per_s": round(w.mb_per_s, 1), "parts": w.parts, "statuses": w.statuses})
        for name, runs in rounds.items():
            w2 = sorted(runs, key=lambda r: r["mb_per_s"])[len(runs) // 2]
            res["wado"].append({"target": name, "clients": conc, **w2,
                                "mb_per_s_rounds": [r["mb_per_s"] for r in runs]})
            log(f"WADO {name:14s} c={conc}: {w2['mb_per_s']:6.1f} MB/s ({w2['bytes'] / 1e6:.0f} MB, {w2['parts']} "
                f"parts, {w2['statuses']}; rounds {[r['mb_per_s'] for r in runs]})")

    # Rendered images and thumbnails: our service caches every rendition in object storage, so each target gets
    # its own instances (a cold first view), then asks for the same ones again (warm).
    # "rendered": what the viewer asks for first (default options; prerendered by STOW with --prerender);
    # "rendered on demand": other options (quality=89), never prerendered: the render itself on first view.
    per = 31
    picks = rng.sample(ds.ct, min(len(ds.ct), per * len(readers) * 2))
    for label, resource, offset in (("rendered", "rendered", 0), ("thumbnail", "thumbnail", 0),
                                    ("rendered on demand", "rendered?quality=89", per * len(readers))
                                    ) if "render" not in skip else ():
        jobs = {}
        for k, (name, t) in enumerate(readers.items()):
            mine = picks[offset + k * per:offset + (k + 1) * per] or picks[:per]
            jobs[name] = (t, [f"studies/{i.study}/series/{i.series}/instances/{i.sop}/{resource}" for i in mine])
        entries: dict[str, dict[str, Any]] = {name: {} for name in readers}
        for phase in ("cold", "warm"):  # the targets take turns request by request (client.images_interleaved)
            for name, lat in asyncio.run(client.images_interleaved(jobs)).items():
                s = lat.summary()
                ok = s["n"] and set(s["statuses"]) == {"200"}
                s["available"] = bool(ok)
                entries[name][phase] = s
                figures = f"p50 {s['p50_ms']:.1f} ms p95 {s['p95_ms']:.1f} ms" if ok else "n/a"
                log(f"{label} {phase} {name:14s}: {figures} statuses {s['statuses']}")
        res[label] = entries
    return res


def scale_run(env: dict[str, str], readers: dict[str, Target], instances: int, repeat: int) -> dict[str, Any]:
    from gateway.identity.seed import demo_account

    per_study = 20
    studies = instances // per_study
    log(f"scale fill: {studies} studies x {per_study} instances")
    t0 = time.perf_counter()
    info = asyncio.run(scale.fill(env["DATABASE_URL"], studies=studies, per_study=per_study,
                                  patients=max(1, studies // 2)))
    info["fill_seconds"] = round(time.perf_counter() - t0, 1)
    from gateway.identity.seed import demo_facility

    facility = demo_facility(demo_account(USER).facility_code).id
    queries = asyncio.run(scale.sample(env["DATABASE_URL"], facility))
    info["tech_a_facility_instances"] = int(queries.pop("_visible_instances")[0])
    info["queries"] = []
    floor = {name: Target(name, t.root.removesuffix("/dicom-web"), t.headers) for name, t in readers.items()}
    groups: list[tuple[str, dict[str, Target], list[str]]] = [(label, readers, qs) for label, qs in queries.items()]
    groups.append(("floor: GET /api/imaging/capabilities (token check + audit row, no index)", floor,
                   ["api/imaging/capabilities"] * 40))
    for label, targets, qs in groups:
        for conc in (1, 4):
            for name, s in _qido_rounds(targets, qs, conc, repeat).items():
                info["queries"].append({"target": name, "query": label, "clients": conc, **s, "example": qs[0]})
                log(f"scale QIDO {name:14s} {label[:20]} c={conc}: p50 {s['p50_ms']:.1f} p95 {s['p95_ms']:.1f} ms "
                    f"(rounds {s['p50_rounds']}) statuses {s['statuses']} matches {s['matches_total']}")
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct-studies", type=int, default=3)
    parser.add_argument("--ct-instances", type=int, default=100)
    parser.add_argument("--filler", type=int, default=2000)
    parser.add_argument("--scale-instances", type=int, default=1_000_000, help="0 skips the scale run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="imaging", help="result file stem")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of each read measurement, targets interleaved; the median round is kept")
    parser.add_argument("--imaging-workers", type=int, default=2,
                        help="uvicorn worker processes of the imaging service (Procfile: IMAGING_WORKERS)")
    parser.add_argument("--prerender", action="store_true",
                        help="IMAGING_PRERENDER_FIRST_FRAME=true: STOW-RS prerenders each image's first view")
    parser.add_argument("--skip", default="", help="comma-separated: qido,wado,render (quick partial runs)")
    parser.add_argument("--before", type=Path, default=None,
                        help="the .json of an earlier run (before a change): its ratios are shown beside this run's")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the .md from the existing .json (e.g. after adding a \"notes\" list to it)")
    args = parser.parse_args()
    if args.render_only:
        from bench.imaging.report import ratios, render

        saved = json.loads((args.out / f"{args.name}.json").read_text())
        saved["ratios"] = ratios(saved)
        (args.out / f"{args.name}.json").write_text(json.dumps(saved, indent=2, ensure_ascii=False))
        (args.out / f"{args.name}.md").write_text(render(saved))
        return
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    binary = orthanc.ensure_orthanc()
    log("generating the data set")
    t0 = time.perf_counter()
    ds = data.generate(args.ct_studies, args.ct_instances, args.filler, seed=args.seed)
    gen_s = time.perf_counter() - t0
    total_bytes = sum(len(i.data) for i in ds.ct + ds.filler)
    log(f"data set: {len(ds.ct)} CT + {len(ds.filler)} filler instances, {total_bytes / 1e6:.0f} MB, {gen_s:.0f} s")
    work = Path(tempfile.mkdtemp(prefix="th-bench-img-"))
    os.chmod(work, 0o755)  # noqa: S103 - the postgres user must reach its data directory
    logs = work / "logs"
    logs.mkdir()
    result: dict[str, Any] = {}
    try:
        with infrastructure(work) as infra:
            env = {**infra, "TH_ENV": "development", "TH_VAR_DIR": str(work / "var"), "OBJECT_STORE": "file",
                   "LOG_LEVEL": "WARNING", "GATEWAY_RATE_USER_LIMIT": "100000000",
                   "GATEWAY_RATE_ADDRESS_LIMIT": "100000000"}
            prepare(env, work / "var")
            with contextlib.suppress(OSError, ValueError):
                PIDS["postgres"] = int((work / "pg" / "data" / "postmaster.pid").read_text().split()[0])
            vers = versions(binary, env["DATABASE_URL"])
            with (
                server("services.imaging.app:app", {**env, "WEB_CONCURRENCY": str(args.imaging_workers),
                                                   "IMAGING_PRERENDER_FIRST_FRAME": str(args.prerender).lower()},
                       logs, "imaging") as imaging,
                server("gateway.app:app", {**env, "IMAGING_URL": imaging}, logs, "gateway") as gw,
            ):
                token = Token(gw)
                ours = Target("ours (gateway)", f"{gw}/dicom-web", token.headers)
                direct = Target("ours (service)", f"{imaging}/dicom-web", token.headers)
                with orthanc.orthanc(binary, work / "orthanc", logs) as orth:
                    PIDS["orthanc"] = orthanc.PIDS["orthanc"]
                    o = Target("Orthanc", f"{orth}/dicom-web")
                    log("side by side")
                    result["side_by_side"] = side_by_side(
                        ds, {"Orthanc": o, "ours (gateway)": ours}, {"Orthanc": o, "ours (gateway)": ours,
                                                                     "ours (service)": direct},
                        args.seed, {"Orthanc": ["orthanc"], "ours (gateway)": ["imaging", "gateway", "postgres"]},
                        args.repeat, frozenset(filter(None, args.skip.split(","))))
                    result["orthanc_statistics"] = httpx.get(f"{orth}/statistics", timeout=30).json()
                log("Orthanc stopped")
                if args.scale_instances:
                    result["scale"] = scale_run(env, {"ours (service)": direct, "ours (gateway)": ours},
                                                args.scale_instances, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = machine()
    result["machine"] = {**info, "load_average_before": [round(x, 2) for x in load_before],
                         "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    result["versions"] = vers
    result["started"] = started
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["imaging_workers"] = args.imaging_workers
    result["prerender_first_frame"] = args.prerender
    result["data_set"] = {"ct_studies": args.ct_studies, "ct_instances_per_study": args.ct_instances,
                          "filler_studies": args.filler, "bytes": total_bytes, "generation_s": round(gen_s, 1),
                          "repeat": args.repeat}
    from bench.imaging.report import ratios, render

    result["ratios"] = ratios(result)
    if args.before is not None:
        earlier = json.loads(args.before.read_text())
        m = earlier.get("machine", {})
        result["before"] = {
            "label": f"run {earlier.get('started')} ({earlier.get('imaging_workers', 1)} imaging worker(s); load "
                     f"{m.get('load_average_before')} before, {m.get('load_average_after')} after)",
            "started": earlier.get("started"), "ratios": earlier.get("ratios", []),
            "stow": earlier.get("side_by_side", {}).get("stow", [])}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    (args.out / f"{args.name}.md").write_text(render(result))
    log(f"wrote {args.out / (args.name + '.md')}")


if __name__ == "__main__":
    sys.exit(main())
