"""Client-side costs behind the gateway's design choices, measured in one process (CPU µs per call).

- HTTP client to the services: aiohttp ``ClientSession`` against httpx ``AsyncClient``, same keep-alive pool.
- Rate-limit check: the sliding-window script through redis-py's pool against the gateway's pipelined
  connection (gateway/ratelimit.py ``PipelinedScript``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import redis.asyncio as aioredis

from gateway.ratelimit import RateLimiter, RateLimitSettings


async def _cost(call: Callable[[], Awaitable[object]], total: int, concurrency: int) -> tuple[float, float]:
    """(CPU µs per call, calls per second) for ``total`` calls from ``concurrency`` tasks."""
    for _ in range(100):
        await call()
    cpu0, wall0 = time.process_time(), time.perf_counter()

    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    await asyncio.gather(*(worker(total // concurrency) for _ in range(concurrency)))
    return (time.process_time() - cpu0) / total * 1e6, total / (time.perf_counter() - wall0)


async def http_clients(url: str, total: int = 5000, concurrency: int = 16) -> dict[str, tuple[float, float]]:
    results = {}
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64), auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    )

    async def with_aiohttp() -> None:
        async with session.get(url, headers={"Authorization": "Bearer x"}) as r:
            while await r.content.readany():
                pass

    results["aiohttp"] = await _cost(with_aiohttp, total, concurrency)
    await session.close()
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=64))

    async def with_httpx() -> None:
        async with client.stream("GET", url, headers={"Authorization": "Bearer x"}) as r:
            async for _ in r.aiter_raw():
                pass

    results["httpx"] = await _cost(with_httpx, total // 5, concurrency)
    await client.aclose()
    return results


async def rate_checks(redis_url: str, total: int = 10000, concurrency: int = 32) -> dict[str, tuple[float, float]]:
    client = aioredis.from_url(redis_url)
    settings = RateLimitSettings(rate_user_limit=10**9, rate_address_limit=10**9, rate_key_prefix="rl-bench")
    results = {}
    for name, url in (("redis-py pool", None), ("pipelined", redis_url)):
        limiter = RateLimiter(client, settings, url=url)
        results[name] = await _cost(
            lambda lim=limiter: lim.check_request("bench-user", "127.0.0.1"), total, concurrency
        )
        limiter.close()
    await client.aclose()
    return results


def run(upstream_url: str, redis_url: str) -> dict[str, dict[str, tuple[float, float]]]:
    import uvloop

    async def both() -> dict[str, dict[str, tuple[float, float]]]:
        return {"http_client": await http_clients(upstream_url), "rate_check": await rate_checks(redis_url)}

    return uvloop.run(both())
