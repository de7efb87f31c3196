"""Gateway benchmark: what the gateway adds to an authenticated GET of a small JSON endpoint.

``python -m bench.gateway [--duration 10] [--connections 1,32]``

Starts PostgreSQL and Redis with the project's local stack (or uses DATABASE_URL/REDIS_URL when set),
migrates, starts the imaging service and the gateway with uvicorn on loopback, and drives them with wrk
(installed with apt-get when missing). Targets, each at every connection count:

- ``service``: ``GET /api/imaging/capabilities`` on the service directly (token check + audit row);
- ``gateway``: the same through the gateway (token check, rate limit in Redis, proxy);
- ``gateway, no rate limit``: the same with ``GATEWAY_RATE_LIMIT_ENABLED=false``, to price the Redis call;
- ``bare upstream`` / ``gateway → bare upstream``: a do-nothing upstream (bench/gateway/upstream.py) alone and
  behind the gateway, which isolates the gateway's own cost from the service's work.

Writes bench/results/gateway.md and gateway.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
PATH = "/api/imaging/capabilities"
PIDS: dict[str, int] = {}  # server name -> process id, for CPU accounting


@dataclass
class Run:
    target: str
    connections: int
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    non_2xx: int
    gateway_cpu_us_per_request: float | None = None  # CPU time of the gateway process / requests served


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return found


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip()).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(binary: str, target: str, url: str, token: str, connections: int, duration: int) -> Run:
    out = subprocess.run(
        [binary, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-H", f"Authorization: Bearer {token}", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pct = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    return Run(target, connections, rps, _ms(pct["50"]), _ms(pct["90"]), _ms(pct["99"]), errors, non_2xx)


@contextlib.contextmanager
def infrastructure(work: Path) -> Iterator[dict[str, str]]:
    """DATABASE_URL/REDIS_URL from the environment, or a private PostgreSQL and Redis under ``work``."""
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        yield {"DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": os.environ["REDIS_URL"]}
        return
    from infra.local.stack import Postgres, Redis

    pg = Postgres(work / "pg").start()
    rd = Redis(work / "redis", persist=False).start()
    try:
        yield {"DATABASE_URL": pg.url(), "REDIS_URL": rd.url}
    finally:
        rd.stop()
        pg.stop(quiet=True)


def prepare(env: dict[str, str], var_dir: Path) -> str:
    """Migrate, make the signing keys, and mint a token for a township doctor."""
    os.environ.update(env)
    from common.config import reset_settings_cache
    from common.migrations import migrate
    from gateway.identity.keys import ensure_keys, load_private_key
    from tests.gateway.proxy_support import mint

    reset_settings_cache()
    asyncio.run(migrate(env["DATABASE_URL"]))
    key = load_private_key(ensure_keys(var_dir / "keys"))
    return mint(key, expires_in=3600)


@contextlib.contextmanager
def server(app: str, env: dict[str, str], log_dir: Path, name: str) -> Iterator[str]:
    from infra.local.stack import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (log_dir / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--no-proxy-headers",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    PIDS[name] = proc.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited: {(log_dir / f'{name}.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code in (200, 404):
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def machine() -> dict[str, str]:
    load = os.getloadavg()
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average_1m": f"{load[0]:.2f}",
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    binary: str,
    targets: dict[str, str],
    token: str,
    connections: list[int],
    duration: int,
    gateways: dict[str, str],
    repeat: int = 1,
) -> list[Run]:
    """Every target at every connection count, interleaved (direct and through the gateway back to back, so
    drift in the machine's load hits both alike); with ``repeat`` > 1 the run with the median p50 is kept."""
    for target, url in targets.items():
        with httpx.Client() as c:  # warm up: connections, token cache, caches in PostgreSQL
            for _ in range(200):
                r = c.get(url, headers={"Authorization": f"Bearer {token}"})
                if r.status_code != 200:
                    raise SystemExit(f"{target}: {r.status_code} {r.text[:300]}")
    trials: dict[tuple[str, int], list[Run]] = {}
    for n in connections:
        for _ in range(repeat):
            for target, url in targets.items():
                pid = PIDS.get(gateways.get(target, ""))
                cpu_before = cpu_seconds(pid) if pid else 0.0
                run = wrk(binary, target, url, token, n, duration)
                if pid:
                    served = run.requests_per_s * duration
                    run.gateway_cpu_us_per_request = (cpu_seconds(pid) - cpu_before) / served * 1e6 if served else None
                cpu = f"  gateway CPU {run.gateway_cpu_us_per_request:5.0f} us/req" if pid else ""
                print(
                    f"{target:32s} c={n:<3d} {run.requests_per_s:9.0f} req/s  p50 {run.p50_ms:7.3f} ms  "
                    f"p99 {run.p99_ms:7.3f} ms  errors {run.errors + run.non_2xx}{cpu}",
                    flush=True,
                )
                trials.setdefault((target, n), []).append(run)
    runs = []
    for target in targets:
        for n in connections:
            ordered = sorted(trials[(target, n)], key=lambda r: r.p50_ms)
            runs.append(ordered[len(ordered) // 2])
    return runs


def report(
    runs: list[Run],
    info: dict[str, str],
    duration: int,
    micro: dict[str, dict[str, tuple[float, float]]] | None = None,
    load_before: str = "",
    repeat: int = 1,
) -> str:
    by = {(r.target, r.connections): r for r in runs}
    lines = [
        "# Gateway benchmark",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores (shared by wrk, the gateway, the service, PostgreSQL "
        f"and Redis); Python {info['python']}, Linux {info['kernel']}. wrk, 1 thread, {duration} s per run"
        f"{f', median of {repeat} runs by p50' if repeat > 1 else ''}; targets interleaved.",
        f"Load average (1 min) before / after: {load_before} / {info['load_average_1m']} — other work on the "
        "machine competes for the same 2 cores, so compare rows of one run, not runs of different days.",
        f"Request: authenticated `GET {PATH}` (small JSON). One uvicorn worker per process (uvloop, httptools).",
        "",
        "| target | connections | req/s | p50 ms | p90 ms | p99 ms | errors | gateway CPU µs/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        cpu = f"{r.gateway_cpu_us_per_request:.0f}" if r.gateway_cpu_us_per_request else "–"
        lines.append(
            f"| {r.target} | {r.connections} | {r.requests_per_s:,.0f} | {r.p50_ms:.3f} | {r.p90_ms:.3f} "
            f"| {r.p99_ms:.3f} | {r.errors + r.non_2xx} | {cpu} |"
        )
    lines += [
        "",
        "How to read it: `service` rows include the service's own work for every request (token check and an "
        "audit row committed to PostgreSQL), which bounds both paths; the `bare upstream` rows isolate what the "
        "gateway itself costs (token check, rate-limit round trip to Redis, proxying with aiohttp). "
        "`gateway CPU µs/req` is the gateway process's CPU time divided by the requests it served — the figure "
        "least disturbed by other load: 1 s of one core over it is the gateway's ceiling per worker.",
        "",
        "Added by the gateway (p50 through the gateway minus p50 direct, same connections):",
        "",
    ]
    for base, through in (
        ("service", "gateway"),
        ("service", "gateway, no rate limit"),
        ("bare upstream", "gateway → bare upstream"),
    ):
        for n in sorted({r.connections for r in runs}):
            a, b = by.get((base, n)), by.get((through, n))
            if a and b:
                lines.append(
                    f"- {through} vs {base}, c={n}: {b.p50_ms - a.p50_ms:+.3f} ms p50, "
                    f"{b.p99_ms - a.p99_ms:+.3f} ms p99; {b.requests_per_s:,.0f} vs "
                    f"{a.requests_per_s:,.0f} req/s"
                )
    if micro:
        lines += ["", "Client-side cost of the design choices (bench/gateway/micro.py, CPU µs per call, calls/s):", ""]
        for group, entries in micro.items():
            for name, (cpu, rate) in entries.items():
                lines.append(f"- {group}: {name}: {cpu:.0f} µs CPU/call, {rate:,.0f}/s")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="1,32")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--only", default="", help="comma-separated target names to run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per target and connection count (median kept)")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    load_before = f"{os.getloadavg()[0]:.2f}"
    binary = ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="th-bench-gw-"))
    os.chmod(work, 0o755)  # noqa: S103 - the postgres user must reach its data directory
    logs = work / "logs"
    logs.mkdir()
    try:
        with infrastructure(work) as infra:
            env = {
                **infra,
                "TH_ENV": "development",
                "TH_VAR_DIR": str(work / "var"),
                "OBJECT_STORE": "file",
                "LOG_LEVEL": "WARNING",
                "GATEWAY_RATE_USER_LIMIT": "100000000",
                "GATEWAY_RATE_ADDRESS_LIMIT": "100000000",
            }
            token = prepare(env, work / "var")
            with (
                server("services.imaging.app:app", env, logs, "imaging") as imaging,
                server("bench.gateway.upstream:app", env, logs, "bare") as bare,
                server("gateway.app:app", {**env, "IMAGING_URL": imaging}, logs, "gateway") as gw,
                server(
                    "gateway.app:app",
                    {**env, "IMAGING_URL": imaging, "GATEWAY_RATE_LIMIT_ENABLED": "false"},
                    logs,
                    "gateway-nolimit",
                ) as gw_free,
                server("gateway.app:app", {**env, "IMAGING_URL": bare}, logs, "gateway-bare") as gw_bare,
            ):
                targets = {
                    "service": imaging + PATH,
                    "gateway": gw + PATH,
                    "gateway, no rate limit": gw_free + PATH,
                    "bare upstream": bare + PATH,
                    "gateway → bare upstream": gw_bare + PATH,
                }
                if args.only:
                    wanted = set(args.only.split(","))
                    targets = {k: v for k, v in targets.items() if k in wanted}
                gateways = {
                    "gateway": "gateway",
                    "gateway, no rate limit": "gateway-nolimit",
                    "gateway → bare upstream": "gateway-bare",
                }
                runs = measure(binary, targets, token, connections, args.duration, gateways, args.repeat)
                from bench.gateway.micro import run as micro_run

                micro = micro_run(bare + PATH, infra["REDIS_URL"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gateway.md").write_text(report(runs, info, args.duration, micro, load_before, args.repeat))
    summary = {
        "machine": {**info, "load_average_1m_before": load_before},
        "duration_s": args.duration,
        "repeat": args.repeat,
        "path": PATH,
        "runs": [asdict(r) for r in runs],
        "micro": {g: {k: {"cpu_us_per_call": c, "per_second": r} for k, (c, r) in e.items()} for g, e in micro.items()},
    }
    (args.out / "gateway.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out / 'gateway.md'}")


if __name__ == "__main__":
    main()
