"""The gateway asking its services about themselves: readiness and OpenAPI documents."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from fastapi import FastAPI

from common.services import SERVICES, ServiceSpec

READINESS_TIMEOUT = 1.5


def _session(app: FastAPI) -> aiohttp.ClientSession:
    runtime = getattr(app.state, "proxy", None)
    if runtime is None:
        raise RuntimeError("the proxy has not started")
    session: aiohttp.ClientSession = runtime.session
    return session


async def fetch_json(app: FastAPI, spec: ServiceSpec, path: str, limit: float) -> tuple[int, Any]:
    """GET ``path`` from ``spec``'s service: (status, parsed JSON or None)."""
    async with _session(app).get(spec.url.rstrip("/") + path, timeout=aiohttp.ClientTimeout(total=limit)) as resp:
        raw = await resp.read()
        try:
            return resp.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return resp.status, None


async def _service_ready(app: FastAPI, spec: ServiceSpec) -> tuple[str, str]:
    try:
        status, body = await fetch_json(app, spec, "/readyz", READINESS_TIMEOUT)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return spec.name, f"down: {type(exc).__name__}"
    if status == 200:
        return spec.name, "ok"
    down = body.get("down") if isinstance(body, dict) else None
    return spec.name, f"down: HTTP {status}" + (f" ({', '.join(map(str, down))})" if down else "")


async def services_readiness(app: FastAPI) -> dict[str, str]:
    """Every service's /readyz, asked in parallel with a short timeout: ``{"service:imaging": "ok", ...}``."""
    results = await asyncio.gather(*(_service_ready(app, spec) for spec in SERVICES))
    return {f"service:{name}": state for name, state in results}
