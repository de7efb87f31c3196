"""The one client both archives get: httpx (asyncio), HTTP/1.1 on loopback, same requests, same order."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import numpy as np

from bench.imaging.data import Instance

JSON = "application/dicom+json"
DICOM_MULTIPART = 'multipart/related; type="application/dicom"'


@dataclass
class Target:
    name: str
    root: str                                   # DICOMweb root, e.g. http://127.0.0.1:8000/dicom-web
    headers: Callable[[], dict[str, str]] = dict  # fresh each request (tokens expire)


@dataclass
class Latencies:
    values_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    results: list[int] = field(default_factory=list)  # matches per QIDO query

    def add(self, ms: float, status: int) -> None:
        self.values_ms.append(ms)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def pct(self, q: float) -> float | None:
        return float(np.percentile(self.values_ms, q)) if self.values_ms else None

    def summary(self) -> dict[str, object]:
        return {"n": len(self.values_ms), "p50_ms": self.pct(50), "p95_ms": self.pct(95),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "matches_total": sum(self.results) if self.results else None}


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=httpx.Limits(max_connections=16),
                             trust_env=False)


async def _pool(jobs: Sequence[object], concurrency: int, work: Callable[[object], object]) -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    for j in jobs:
        queue.put_nowait(j)

    async def worker() -> None:
        while True:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await work(job)  # type: ignore[misc]

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def multipart(parts: Sequence[bytes]) -> tuple[bytes, str]:
    boundary = "bench-" + secrets.token_hex(12)
    chunks: list[bytes] = []
    for p in parts:
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), p, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'{DICOM_MULTIPART}; boundary="{boundary}"'


@dataclass
class StowResult:
    instances: int
    bytes: int
    seconds: float
    requests: int
    failed_requests: int
    statuses: dict[str, int]

    @property
    def instances_per_s(self) -> float:
        return self.instances / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0


async def stow(target: Target, instances: Sequence[Instance], concurrency: int, per_request: int = 10) -> StowResult:
    batches = [instances[i:i + per_request] for i in range(0, len(instances), per_request)]
    statuses: dict[str, int] = {}
    failed = 0
    async with _client() as c:
        async def send(batch: object) -> None:
            nonlocal failed
            body, ctype = multipart([i.data for i in batch])  # type: ignore[attr-defined]
            r = await c.post(f"{target.root}/studies", content=body,
                             headers={**target.headers(), "Content-Type": ctype, "Accept": JSON})
            statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
            if r.status_code != 200:
                failed += 1
                if failed <= 3:
                    print(f"  {target.name} STOW {r.status_code}: {r.text[:300]}", flush=True)

        t0 = time.perf_counter()
        await _pool(batches, concurrency, send)
        seconds = time.perf_counter() - t0
    return StowResult(len(instances), sum(len(i.data) for i in instances), seconds, len(batches), failed, statuses)


async def qido(target: Target, queries: Sequence[str], concurrency: int, warmup: int = 3) -> Latencies:
    """Each query string (e.g. ``studies?PatientID=X``) once; latency to the last byte of the answer."""
    out = Latencies()
    async with _client() as c:
        for q in queries[:warmup]:
            await c.get(f"{target.root}/{q}", headers={**target.headers(), "Accept": JSON})

        async def one(q: object) -> None:
            t0 = time.perf_counter()
            r = await c.get(f"{target.root}/{q}", headers={**target.headers(), "Accept": JSON})
            body = r.content
            out.add((time.perf_counter() - t0) * 1000, r.status_code)
            if r.status_code == 200:
                out.results.append(body.count(b'"0020000D"'))
            elif r.status_code == 204:
                out.results.append(0)

        await _pool(list(queries), concurrency, one)
    return out


@dataclass
class WadoResult:
    retrieves: int
    bytes: int
    seconds: float
    parts: int
    statuses: dict[str, int]

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0


async def wado_series(target: Target, series: Sequence[tuple[str, str]], concurrency: int, rounds: int = 2,
                      warmup: bool = True) -> WadoResult:
    jobs = [s for _ in range(rounds) for s in series]
    total = parts = 0
    statuses: dict[str, int] = {}
    async with _client() as c:
        async def one(job: object) -> None:
            nonlocal total, parts
            study, se = job  # type: ignore[misc]
            n = 0
            async with c.stream("GET", f"{target.root}/studies/{study}/series/{se}",
                                headers={**target.headers(), "Accept": DICOM_MULTIPART}) as r:
                m = re.search(r'boundary="?([^";]+)', r.headers.get("content-type", ""))
                marker = b"--" + m.group(1).encode() if m else None
                tail = b""
                async for chunk in r.aiter_bytes(1 << 20):
                    n += len(chunk)
                    if marker:
                        window = tail + chunk
                        parts += window.count(marker) - tail.count(marker)
                        tail = window[-len(marker):]
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
            total += n

        if warmup:
            await one(series[0])
            total = parts = 0
            statuses.clear()
        t0 = time.perf_counter()
        await _pool(jobs, concurrency, one)
        seconds = time.perf_counter() - t0
    # the closing delimiter is counted as one more marker per retrieve
    return WadoResult(len(jobs), total, seconds, parts - len(jobs), statuses)


async def images(target: Target, paths: Sequence[str], accept: str = "image/jpeg", concurrency: int = 1) -> Latencies:
    """GET each path (relative to the root) for a rendered image or thumbnail; latency of each."""
    out = Latencies()
    async with _client() as c:
        r = await c.get(f"{target.root}/{paths[0]}", headers={**target.headers(), "Accept": accept})
        if r.status_code != 200:
            out.add(0.0, r.status_code)
            out.values_ms.clear()
            return out

        async def one(p: object) -> None:
            t0 = time.perf_counter()
            r = await c.get(f"{target.root}/{p}", headers={**target.headers(), "Accept": accept})
            _ = r.content
            out.add((time.perf_counter() - t0) * 1000, r.status_code)
            if r.status_code == 200 and not r.content.startswith(b"\xff\xd8"):
                out.statuses[-1] = out.statuses.get(-1, 0) + 1  # -1: a 200 that is not a JPEG

        await _pool(list(paths[1:]), concurrency, one)
    return out


async def images_interleaved(jobs: dict[str, tuple[Target, Sequence[str]]], accept: str = "image/jpeg",
                             ) -> dict[str, Latencies]:
    """Like ``images`` for several targets at once, one request at a time, the targets taking turns (request
    i of each target, then request i+1...): each sees the same moments of a shared machine's load."""
    out = {name: Latencies() for name in jobs}
    clients = {name: _client() for name in jobs}
    try:
        for name, (t, paths) in jobs.items():  # a first request each (connection, token), not measured
            r = await clients[name].get(f"{t.root}/{paths[0]}", headers={**t.headers(), "Accept": accept})
            if r.status_code != 200:
                out[name].add(0.0, r.status_code)
                out[name].values_ms.clear()
        live = {name: job for name, job in jobs.items() if not out[name].statuses}
        for i in range(1, max((len(p) for _, p in live.values()), default=0)):
            for name, (t, paths) in live.items():
                if i >= len(paths):
                    continue
                t0 = time.perf_counter()
                r = await clients[name].get(f"{t.root}/{paths[i]}", headers={**t.headers(), "Accept": accept})
                _ = r.content
                out[name].add((time.perf_counter() - t0) * 1000, r.status_code)
                if r.status_code == 200 and not r.content.startswith(b"\xff\xd8"):
                    out[name].statuses[-1] = out[name].statuses.get(-1, 0) + 1
    finally:
        for c in clients.values():
            await c.aclose()
    return out
