"""Consult benchmark: a 3-party video room through the gateway's signaling socket, and the consult API under load.

``python -m bench.consult [--soak-minutes 2] [--window 30] [--api-users 50] [--api-seconds 30] [--profile]``

Platform (as bench/imaging and bench/gateway start theirs, with their code): a private PostgreSQL + Redis
(infra/local/stack.py via bench.gateway.run.infrastructure), migrations and the demo region
(bench.imaging.run.prepare), the consult service and the gateway under uvicorn on loopback (one process each).
The consult service offers media on 127.0.0.1 only (``CONSULT_MEDIA_ADDRESSES``); ICE servers: none.

1. Room (bench/consult/room.py): three aiortc participants (services/consult/rooms/client.py, 640x480 at
   30 fps + a 48 kHz tone), each in its own process, in one consult session: join-to-first-frame, received
   fps per pair, the consult process's CPU (cores) over a steady window, the participants' CPU apart, RSS over
   a soak of ``--soak-minutes`` (``--profile``: perf samples of the server during the window, and a
   single-thread measurement of what one VP8 decode and one encode of this video cost, to split the CPU).
   ``--diag`` serves the consult app through bench/consult/diag.py and samples its heap and queues;
   ``--encode-once off`` runs the consult service with ``CONSULT_ENCODE_ONCE=false`` (each receive slot
   re-encodes; default on: one VP8 encoder per source), ``--malloc-arena-max N`` sets ``MALLOC_ARENA_MAX`` for
   it; ``--attach`` (with
   ``--render-only``) adds such runs to the comparison table of the page.
2. API (bench/consult/api_load.py): ``--api-users`` concurrent users with tokens of four demo accounts, a mix
   of inbox, detail, draft, chat and opinion requests through the gateway for ``--api-seconds``.

Writes bench/results/consult.md and consult.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata as md
from pathlib import Path
from typing import Any

import httpx

from bench.gateway.run import PIDS, cpu_seconds, infrastructure, machine, server

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
ACCOUNTS = ("doctor_a", "doctor_b", "tech_a", "specialist", "specialist_city")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {msg}", flush=True)


@contextlib.contextmanager
def on_port(port: int) -> Iterator[None]:
    """bench.gateway.run.server() takes a free port of its own; the consult service must know the gateway's
    address before the gateway starts (it asks the gateway's directory when someone is invited), so the
    gateway is started on a port chosen beforehand."""
    import infra.local.stack as stack

    original = stack.free_port
    stack.free_port = lambda: port
    try:
        yield
    finally:
        stack.free_port = original


@contextlib.contextmanager
def platform(work: Path, consult_app: str = "services.consult.app:app", diag: bool = False,
             consult_env: dict[str, str] | None = None) -> Iterator[tuple[str, dict[str, str]]]:
    """PostgreSQL, Redis, the consult service and the gateway; yields (gateway URL, env)."""
    from bench.imaging.run import prepare
    from infra.local.stack import free_port

    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    with infrastructure(work) as infra:
        env = {**infra, "TH_ENV": "development", "TH_VAR_DIR": str(work / "var"), "OBJECT_STORE": "file",
               "LOG_LEVEL": "WARNING", "GATEWAY_RATE_USER_LIMIT": "100000000",
               "GATEWAY_RATE_ADDRESS_LIMIT": "100000000", "GATEWAY_RATE_LOGIN_LIMIT": "100000",
               "CONSULT_MEDIA_ADDRESSES": '["127.0.0.1"]', "CONSULT_ICE_SERVERS": "[]"}
        prepare(env, work / "var")
        with contextlib.suppress(OSError, ValueError):
            PIDS["postgres"] = int((work / "pg" / "data" / "postmaster.pid").read_text().split()[0])
        gw_port = free_port()
        app_env = {**({"BENCH_CONSULT_APP": consult_app} if diag else {}), **(consult_env or {})}
        with server("bench.consult.diag:app" if diag else consult_app,
                    {**env, **app_env, "GATEWAY_URL": f"http://127.0.0.1:{gw_port}"}, logs, "consult") as consult:
            env = {**env, "BENCH_CONSULT_URL": consult}
            with on_port(gw_port):
                gateway_cm = server("gateway.app:app", {**env, "CONSULT_URL": consult}, logs, "gateway")
                gw = gateway_cm.__enter__()
            try:
                yield gw, env
            finally:
                gateway_cm.__exit__(None, None, None)


def renice(pid: int, nice: int) -> None:
    """Every thread of ``pid`` (Linux applies a nice value per thread; new threads inherit their creator's)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), nice)


def login(gateway: str, users: tuple[str, ...] = ACCOUNTS) -> dict[str, str]:
    from gateway.identity.seed import DEMO_PASSWORD

    out = {}
    for u in users:
        r = httpx.post(f"{gateway}/auth/token", data={"grant_type": "password", "username": u,
                                                      "password": DEMO_PASSWORD}, timeout=30)
        r.raise_for_status()
        out[u] = r.json()["access_token"]
    return out


def versions(dsn: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pkg in ("aiortc", "aioice", "av", "pylibsrtp", "uvicorn", "fastapi", "websockets", "aiohttp", "asyncpg",
                "numpy"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    with contextlib.suppress(Exception):
        import av

        out["libvpx/ffmpeg (PyAV)"] = str(av.library_versions.get("libavcodec"))
    with contextlib.suppress(Exception):
        out["postgresql"] = subprocess.run(["psql", dsn, "-tAc", "SHOW server_version"], capture_output=True,
                                           text=True, timeout=20).stdout.strip()
    with contextlib.suppress(Exception):
        out["redis"] = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--soak-minutes", type=float, default=2.0, help="room soak, from when every stream flows")
    parser.add_argument("--window", type=float, default=30.0, help="steady window for CPU and fps (seconds)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after every stream flows, before the window")
    parser.add_argument("--sample", type=float, default=10.0, help="soak sampling interval (seconds)")
    parser.add_argument("--stagger", type=float, default=2.0, help="seconds between the participants' joins")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--api-users", type=int, default=50)
    parser.add_argument("--api-seconds", type=float, default=30.0)
    parser.add_argument("--api-warmup", type=float, default=5.0)
    parser.add_argument("--api-consults", type=int, default=5, help="prepared consults per requester/consultant pair")
    parser.add_argument("--profile", action="store_true",
                        help="perf samples of the consult process during the window + codec cost per frame")
    parser.add_argument("--only", default="", help="room or api")
    parser.add_argument("--consult-app", default="services.consult.app:app",
                        help="the consult service's ASGI app")
    parser.add_argument("--encode-once", choices=("on", "off"), default="on",
                        help="CONSULT_ENCODE_ONCE of the consult service (off: every receive slot re-encodes)")
    parser.add_argument("--malloc-arena-max", type=int, default=0, help="MALLOC_ARENA_MAX of the consult service")
    parser.add_argument("--diag", action="store_true",
                        help="serve the consult app through bench/consult/diag.py and sample its /bench/diag (queued "
                             "frames, glibc heap, object counts) with every soak sample")
    parser.add_argument("--nice", type=int, default=0,
                        help="run the consult service, gateway and participants at this nice value (e.g. -10: ahead "
                             "of the machine's other work, to see the room without CPU contention)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="consult", help="result file stem")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the existing .json")
    parser.add_argument("--attach", action="append", default=[], metavar="LABEL=PATH",
                        help="with --render-only: add the room of another run's JSON (e.g. --nice, --encode-once "
                             "off) to the comparison table")
    args = parser.parse_args()
    from bench.consult.report import render

    if args.render_only:
        saved = json.loads((args.out / f"{args.name}.json").read_text())
        for item in args.attach:
            label, path = item.split("=", 1)
            other = json.loads(Path(path).read_text())
            saved.setdefault("other_runs", {})[label] = {
                "command": other["command"], "started": other["started"], "machine": other["machine"],
                "settings": other["settings"], "room": other["room"]}
        (args.out / f"{args.name}.json").write_text(json.dumps(saved, indent=2, ensure_ascii=False))
        (args.out / f"{args.name}.md").write_text(render(saved))
        return
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    work = Path(tempfile.mkdtemp(prefix="th-bench-consult-"))
    os.chmod(work, 0o755)  # noqa: S103 - the postgres user must reach its data directory
    result: dict[str, Any] = {"command": "python -m bench.consult " + " ".join(
        a for a in sys.argv[1:]), "settings": {k: (str(v) if isinstance(v, Path) else v)
                                                   for k, v in vars(args).items()}}
    try:
        consult_env = {"CONSULT_ENCODE_ONCE": "true" if args.encode_once == "on" else "false"}
        if args.malloc_arena_max:
            consult_env["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
        with platform(work, args.consult_app, args.diag, consult_env) as (gw, env):
            log(f"platform up: gateway {gw}, consult pid {PIDS['consult']} ({args.consult_app}, {consult_env})")
            if args.nice:
                for name in ("consult", "gateway"):
                    renice(PIDS[name], args.nice)
            result["versions"] = versions(env["DATABASE_URL"])
            tokens = login(gw)
            if args.only in ("", "room"):
                from bench.consult.room import run_room

                during = None
                if args.profile:
                    from bench.consult.profile import perf_during

                    def during() -> dict[str, Any]:
                        return perf_during(PIDS["consult"], min(20.0, args.window - 2), work)
                result["room"] = run_room(
                    gw, tokens, PIDS["consult"], PIDS["gateway"], width=args.width, height=args.height,
                    fps=args.fps, warmup=args.warmup, window=args.window, soak_minutes=args.soak_minutes,
                    sample=args.sample, stagger=args.stagger, log=log, during_window=during, nice=args.nice,
                    diag_url=env["BENCH_CONSULT_URL"] + "/bench/diag" if args.diag else None)
                if args.profile:
                    from bench.consult.profile import codec_costs

                    result["room"]["codec_cost"] = codec_costs(args.width, args.height, args.fps)
                    log(f"codec cost: {result['room']['codec_cost']}")
            if args.only in ("", "api"):
                from bench.consult import api_load

                tokens = login(gw)  # fresh: the soak may have outlived the first ones
                consults, notes = asyncio.run(api_load.prepare(gw, tokens, args.api_consults))
                for n in notes:
                    log(f"api data: {n}")
                cpu0 = {n: cpu_seconds(PIDS[n]) for n in ("consult", "gateway")}
                t0 = time.monotonic()
                api = asyncio.run(api_load.load(gw, tokens, consults, users=args.api_users,
                                                duration=args.api_seconds, warmup=args.api_warmup, seed=args.seed))
                dt = time.monotonic() - t0
                api["server_cores"] = {n: round((cpu_seconds(PIDS[n]) - c) / dt, 3) for n, c in cpu0.items()}
                api["data_notes"] = notes
                result["api"] = api
                log(f"api: {api['requests_per_s']} req/s, p50 {api['p50_ms']} ms, p99 {api['p99_ms']} ms, "
                    f"non-2xx {api['non_2xx']} {api['error_examples'][:3]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = machine()
    result["machine"] = {**info, "load_average_before": [round(x, 2) for x in load_before],
                         "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    result["started"] = started
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    (args.out / f"{args.name}.md").write_text(render(result))
    log(f"wrote {args.out / (args.name + '.md')}")


if __name__ == "__main__":
    main()
