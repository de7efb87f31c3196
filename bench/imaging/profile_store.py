"""Where the imaging service's STOW-RS CPU goes: cProfile of the STOW handler's work, in one process.

``python -m bench.imaging.profile_store [--ct 30] [--filler 200] [--out /tmp/stow.prof]``

A private PostgreSQL (infra/local/stack.py), migrations and the demo region, a FileStore in a temporary
directory; then the benchmark's own data set (bench/imaging/data.py) is sent through what ``POST
/dicom-web/studies`` runs (multipart spooling, ``store_instances``), 10 instances per request, one request at a
time, as tech_a. Worker-thread calls (asyncio.to_thread, anyio) run inline so cProfile sees all the CPU.
Prints the wall time per instance, then the top functions by cumulative and by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from bench.gateway.run import infrastructure
from bench.imaging import data
from bench.imaging.client import multipart
from bench.imaging.run import prepare


async def _inline(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


class _NoProfile:
    def enable(self) -> None: ...

    def disable(self) -> None: ...


async def _chunks(body: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i:i + size]


async def run(dsn: str, objects: Path, ct: int, filler: int, out: Path | None, inline: bool,
              profile: bool = True) -> None:
    from common.auth import Principal
    from common.db import Database
    from common.storage_file import FileStore
    from gateway.identity.seed import demo_account, demo_facility
    from services.imaging import dicomweb_stow
    from services.imaging.service import Archive

    ds = data.generate(1, ct, filler, seed=7)
    account = demo_account("tech_a")
    principal = Principal(user_id=uuid.uuid4(), username="tech_a", roles=frozenset({"technician"}),
                          facility_id=demo_facility(account.facility_code).id)
    db = await Database.connect(dsn)
    archive = Archive.of(db, FileStore(objects, secret="profile-only"))  # noqa: S106
    if inline:
        asyncio.to_thread = _inline
    profiler = cProfile.Profile() if profile else _NoProfile()
    for label, insts in (("CT 512x512", ds.ct), ("filler 64x64", ds.filler)):
        batches = [insts[i:i + 10] for i in range(0, len(insts), 10)]
        t0, cpu0 = time.perf_counter(), os.times()
        profiler.enable()
        for batch in batches:
            body, ctype = multipart([i.data for i in batch])
            status, _ = await dicomweb_stow.stow_body(archive, principal, _chunks(body), ctype, None,
                                                      "http://x/dicom-web")
            assert status == 200, status
        profiler.disable()
        ms = (time.perf_counter() - t0) / len(insts) * 1000
        cpu1 = os.times()
        user, system = ((cpu1.user - cpu0.user) / len(insts) * 1000, (cpu1.system - cpu0.system) / len(insts) * 1000)
        print(f"{label}: {len(insts)} instances, {ms:.2f} ms wall, CPU {user:.2f} ms user + {system:.2f} ms system"
              " per instance (profiled)", flush=True)
    await db.close()
    if not profile:
        return
    stats = pstats.Stats(profiler)
    if out:
        stats.dump_stats(str(out))
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct", type=int, default=30)
    parser.add_argument("--filler", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--threads", action="store_true", help="keep worker threads (cProfile misses them)")
    parser.add_argument("--no-profile", action="store_true", help="time only (no cProfile overhead)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="th-prof-img-"))
    os.chmod(work, 0o755)  # noqa: S103 - the postgres user must reach its data directory
    try:
        with infrastructure(work) as infra:
            env = {**infra, "TH_ENV": "development", "TH_VAR_DIR": str(work / "var"), "OBJECT_STORE": "file",
                   "LOG_LEVEL": "WARNING"}
            prepare(env, work / "var")
            asyncio.run(run(env["DATABASE_URL"], work / "objects", args.ct, args.filler, args.out,
                            not args.threads, not args.no_profile))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
