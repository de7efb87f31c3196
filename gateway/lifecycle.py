"""Start-up and shut-down of the gateway's own resources (signing key, HTTP client to services)."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.identity.startup import start_identity
from gateway.proxy import start_proxy, stop_proxy


async def on_startup(app: FastAPI) -> None:
    await start_identity(app)  # signing key, token verifier, authenticator
    await start_proxy(app)  # pooled HTTP client to the services, rate limiter


async def on_shutdown(app: FastAPI) -> None:
    await stop_proxy(app)
