"""Forwarding by path prefix to the owning service, as a pure-ASGI layer in front of FastAPI.

``GatewayEdge`` sees every request first. A path that a service owns (common/services.py ``owner_of``) is
answered here, never by FastAPI's router: the bearer token is verified (401 without touching the service,
except on the service's declared public prefixes), the rate limits are counted, and the request is streamed
to the service with aiohttp, the response streamed back. Bodies are never buffered: both directions move
chunk by chunk with back-pressure, so a 2 GB upload keeps the gateway's memory flat. Everything else (the
gateway's own API, docs, the web app) goes on to the FastAPI app, after the login and API rate limits
(the token endpoint's small form body is read first, to count a refresh apart from a sign-in).

Proxied requests skip the gateway's own audit and body limit: the service audits and limits each request
itself, with the same request id (``X-Request-ID``), which the gateway forwards or makes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import unquote_plus

import aiohttp
from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.app import LATENCY, REQUESTS
from common.config import ServiceSettings
from common.errors import AppError, Unauthorized
from common.logging import request_id_var
from common.services import ServiceSpec, is_public, owner_of
from gateway.forwarding import (
    DROP_RESPONSE,
    VerifiedTokens,
    bearer,
    caller_address,
    forward_headers,
    request_id,
    send_error,
    upstream_url,
)
from gateway.ratelimit import LOGIN_PATH, Decision, RateLimiter

log = logging.getLogger("telehealth.proxy")


class ProxySettings(ServiceSettings):
    """Forwarding settings, from ``GATEWAY_*``."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", case_sensitive=False)

    connect_timeout: float = 3.0  # a service on the same network answers a connect at once or is down
    read_timeout: float = 300.0  # between two reads of a response: big retrievals start slowly
    pool_limit: int = 512  # keep-alive connections to the services, all together
    keepalive_timeout: float = 60.0
    # Addresses (CIDR, comma-separated) of proxies in front of the gateway whose X-Forwarded-* are believed.
    trusted_proxies: str = ""
    # Gateway paths under these prefixes count against the API rate limits (service paths always do).
    rate_limited_prefixes: str = "/api/,/auth/"

    @cached_property
    def trusted_networks(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.trusted_proxies.split(",") if p.strip())

    @cached_property
    def limited_prefixes(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.rate_limited_prefixes.split(",") if p.strip())

    def trusted(self) -> tuple[str, ...]:
        return self.trusted_networks


@dataclass
class ProxyRuntime:
    """What the edge needs at run time; made by ``start_proxy`` and kept on ``app.state.proxy``."""

    session: aiohttp.ClientSession
    settings: ProxySettings
    limiter: RateLimiter | None
    tokens: VerifiedTokens = field(default_factory=VerifiedTokens)


class ClientGone(Exception):
    """The caller went away while its request body was still being forwarded."""


def _runtime(scope: Scope) -> ProxyRuntime | None:
    app = scope.get("app")
    return getattr(getattr(app, "state", None), "proxy", None)


class GatewayEdge:
    """Pure-ASGI front of the gateway: service paths are proxied here; the rest goes to FastAPI."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        spec = owner_of(scope["path"])
        runtime = _runtime(scope)
        if spec is None:
            if kind == "http" and runtime is not None:
                passed = await self._gateway_limits(scope, receive, send, runtime)
                if passed is None:
                    return
                receive = passed
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        token = request_id_var.set(rid)
        try:
            if runtime is None:
                if kind == "http":
                    await send_error(send, 503, "unavailable", "the gateway is starting", rid, {"Retry-After": "2"})
                return
            if kind == "websocket":
                from gateway.proxy_ws import proxy_websocket

                await proxy_websocket(scope, receive, send, spec=spec, runtime=runtime, rid=rid)
            else:
                await self._proxy_http(scope, receive, send, spec, runtime, rid)
        finally:
            request_id_var.reset(token)

    async def _gateway_limits(
        self, scope: Scope, receive: Receive, send: Send, runtime: ProxyRuntime
    ) -> Receive | None:
        """Rate limits for the gateway's own API: the ``receive`` to go on with (it replays a token request's
        body, which was read to tell a refresh from a sign-in), or None when refused (answer sent)."""
        limiter = runtime.limiter
        path: str = scope["path"]
        if limiter is None or not limiter.enabled:
            return receive
        address = caller_address(scope, runtime.settings.trusted())
        if path == LOGIN_PATH:
            refresh, receive = await refresh_grant_only(scope, receive)
            decision = await (limiter.check_refresh(address) if refresh else limiter.check_login(address))
        elif path.startswith(runtime.settings.limited_prefixes):
            user = None
            token = bearer(scope)
            if token:
                try:
                    user = runtime.tokens.subject(getattr(scope["app"].state, "token_verifier", None), token)
                except AppError:
                    user = None  # the route itself answers the bad token
            decision = await limiter.check_request(user, address)
        else:
            return receive
        if decision.allowed:
            return receive
        await _refuse(send, decision, request_id(scope))
        return None

    async def _proxy_http(
        self, scope: Scope, receive: Receive, send: Send, spec: ServiceSpec, runtime: ProxyRuntime, rid: str
    ) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        refused = await authorize(scope, send, spec, runtime, rid)
        if refused:
            _observe(spec, method, refused, started)
            return
        headers = forward_headers(scope, rid, runtime.settings.trusted())
        gone = False

        async def body() -> AsyncIterator[bytes]:
            nonlocal gone
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone = True
                    raise ClientGone
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        has_body = headers.get("content-length", "0") != "0" or any(
            name == b"transfer-encoding" for name, _ in scope["headers"]
        )
        status = 502
        started_response = False
        try:
            async with runtime.session.request(
                method,
                upstream_url(spec, scope),
                headers=headers,
                data=body() if has_body else None,
                allow_redirects=False,
            ) as resp:
                status = resp.status
                raw = [(k.lower(), v) for k, v in resp.raw_headers if k.lower() not in DROP_RESPONSE]
                raw.append((b"x-request-id", rid.encode()))
                await send({"type": "http.response.start", "status": status, "headers": raw})
                started_response = True
                content = resp.content
                while True:
                    chunk = await content.readany()
                    if not chunk:
                        break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if gone:
                return  # the caller left: nobody to answer
            if started_response:
                # Mid-body failure: raising closes the caller's connection, so a cut-off body can never
                # pass for a whole one.
                log.warning(
                    "upstream broke mid-response", extra={"service": spec.name, "error_type": type(exc).__name__}
                )
                raise
            status, code, detail, extra = _classify(exc, spec)
            log.warning(
                "upstream failed", extra={"service": spec.name, "status": status, "error_type": type(exc).__name__}
            )
            await send_error(send, status, code, detail, rid, extra)
        finally:
            _observe(spec, method, status, started)


TOKEN_PEEK_BYTES = 16 * 1024  # a token request is well under 2 KiB; a bigger body is counted as a sign-in
_FORM = "application/x-www-form-urlencoded"


async def refresh_grant_only(scope: Scope, receive: Receive) -> tuple[bool, Receive]:
    """Whether a request to the token endpoint is a refresh-token grant, and the ``receive`` to pass on
    (replaying whatever body was read).

    Only a POST with a small, complete form body whose every ``grant_type`` is ``refresh_token`` counts as
    a refresh: anything else (a password grant, a missing or repeated-and-different grant type, JSON,
    multipart, a body over ``TOKEN_PEEK_BYTES``) is counted against the strict login limit, so no shape of
    request escapes it. Fields are split on ``&`` and ``;`` (the finest any form parser splits), so a
    ``grant_type=password`` the app could see is always seen here too.
    """
    if scope.get("method") != "POST":
        return False, receive
    content_type = declared = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.decode("latin-1").partition(";")[0].strip().lower()
        elif name == b"content-length":
            declared = value.decode("latin-1").strip()
    too_big = declared is not None and not (declared.isdigit() and int(declared) <= TOKEN_PEEK_BYTES)
    if content_type != _FORM or too_big:
        return False, receive
    read: list[Message] = []
    body = bytearray()
    complete = False
    while len(body) <= TOKEN_PEEK_BYTES:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            break  # the caller went away: the app sees the disconnect
        body += message.get("body", b"")
        if not message.get("more_body", False):
            complete = True
            break

    async def replay() -> Message:
        return read.pop(0) if read else await receive()

    if not complete or len(body) > TOKEN_PEEK_BYTES:
        return False, replay
    grants = [
        unquote_plus(value, encoding="latin-1")
        for name, _, value in (part.partition("=") for part in re.split("[&;]", body.decode("latin-1")))
        if unquote_plus(name, encoding="latin-1") == "grant_type"
    ]
    return bool(grants) and all(g == "refresh_token" for g in grants), replay


async def authorize(
    scope: Scope, send: Send, spec: ServiceSpec, runtime: ProxyRuntime, rid: str, *, websocket: bool = False
) -> int:
    """Verify the token and count the rate limits; the status of the refusal already sent, or 0."""
    user: str | None = None
    if not (spec.public_prefixes and is_public(spec, scope["path"])):
        token = bearer(scope, allow_query=websocket)
        try:
            if token is None:
                raise Unauthorized("a bearer access token is required")
            user = runtime.tokens.subject(getattr(scope["app"].state, "token_verifier", None), token)
        except AppError as exc:
            await _deny(scope, send, exc.status, exc.code, exc.detail, rid, exc.headers, websocket)
            return exc.status
    limiter = runtime.limiter
    if limiter is not None and limiter.enabled:
        decision = await limiter.check_request(user, caller_address(scope, runtime.settings.trusted()))
        if not decision.allowed:
            if websocket:
                await _deny(
                    scope,
                    send,
                    429,
                    "rate_limited",
                    _limit_text(decision),
                    rid,
                    {"Retry-After": str(decision.retry_after)},
                    websocket,
                )
            else:
                await _refuse(send, decision, rid)
            return 429
    return 0


async def _deny(
    scope: Scope, send: Send, status: int, code: str, detail: str, rid: str, headers: dict[str, str], websocket: bool
) -> None:
    if not websocket:
        await send_error(send, status, code, detail, rid, headers)
        return
    from gateway.proxy_ws import deny_websocket

    await deny_websocket(scope, send, status, code, detail, rid)


def _classify(exc: Exception, spec: ServiceSpec) -> tuple[int, str, str, dict[str, str]]:
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return 504, "gateway_timeout", f"the {spec.name} service did not answer in time", {}
    if isinstance(exc, aiohttp.ClientConnectorError):
        return 503, "unavailable", f"the {spec.name} service is unavailable; retry shortly", {"Retry-After": "5"}
    return 502, "bad_gateway", f"the {spec.name} service gave a broken answer", {}


def _limit_text(decision: Decision) -> str:
    who = {
        "user": "this account",
        "address": "this address",
        "login": "login attempts from this address",
        "refresh": "session refreshes from this address",
    }
    return f"too many requests for {who.get(decision.subject, 'this caller')}; retry in {decision.retry_after} s"


async def _refuse(send: Send, decision: Decision, rid: str) -> None:
    await send_error(send, 429, "rate_limited", _limit_text(decision), rid, {"Retry-After": str(decision.retry_after)})


_COUNTERS: dict[tuple[str, str, int], Any] = {}
_TIMERS: dict[tuple[str, str], Any] = {}


def _observe(spec: ServiceSpec, method: str, status: int, started: float) -> None:
    # the label lookups cost more than the counting: keep the children
    counter = _COUNTERS.get((spec.name, method, status))
    if counter is None:
        counter = _COUNTERS[(spec.name, method, status)] = REQUESTS.labels(
            "gateway", method, f"proxy:{spec.name}", str(status)
        )
    timer = _TIMERS.get((spec.name, method))
    if timer is None:
        timer = _TIMERS[(spec.name, method)] = LATENCY.labels("gateway", method, f"proxy:{spec.name}")
    counter.inc()
    timer.observe(time.perf_counter() - started)


def install_proxy(app: FastAPI) -> None:
    """Put the edge in front of the gateway's FastAPI app (outermost middleware)."""
    app.add_middleware(GatewayEdge)


async def start_proxy(app: FastAPI) -> None:
    """Open the pooled HTTP client and the rate limiter; called from gateway/lifecycle.py on_startup."""
    settings = ProxySettings()
    connector = aiohttp.TCPConnector(
        limit=settings.pool_limit, limit_per_host=0, keepalive_timeout=settings.keepalive_timeout, ttl_dns_cache=300
    )
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, connect=settings.connect_timeout, sock_read=settings.read_timeout),
        auto_decompress=False,  # bytes pass through as the service encoded them
        cookie_jar=aiohttp.DummyCookieJar(),  # never carry one user's cookies into another's request
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
    )
    redis = getattr(app.state, "redis", None)
    redis_url = getattr(getattr(app.state, "settings", None), "redis_url", None)
    limiter = RateLimiter(redis, url=redis_url) if redis is not None else None
    app.state.proxy = ProxyRuntime(session=session, settings=settings, limiter=limiter)


async def stop_proxy(app: FastAPI) -> None:
    runtime: ProxyRuntime | None = getattr(app.state, "proxy", None)
    if runtime is not None:
        app.state.proxy = None
        if runtime.limiter is not None:
            runtime.limiter.close()
        await runtime.session.close()
