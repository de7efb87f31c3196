"""``create_service_app()``: what every service (and the gateway) gets alike.

Health (``/healthz``) and readiness (``/readyz``: database, Redis, object store), Prometheus metrics
(``/metrics``), request ids, JSON access logs without patient identifiers or query strings, a body-size
limit (413), the error handler, token verification, and an audit record of every request to a
patient-data route (infrastructure routes excepted).
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.audit import AuditEntry, AuditWriter, outcome_for_status
from common.auth import Principal, TokenVerifier, load_public_keys
from common.config import PlatformSettings, platform_settings
from common.db import Database
from common.errors import error_body, install_error_handlers
from common.logging import configure_logging, request_id_var
from common.storage import install_presigned_route

log = logging.getLogger("telehealth.http")

INFRA_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc",
                         "/docs/oauth2-redirect"})

REQUESTS = Counter("th_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram(
    "th_http_request_seconds", "HTTP request latency", ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

Hook = Callable[[FastAPI], Awaitable[None]]
# An extra readiness check: names to "ok" or "down: why" (the gateway adds every service's /readyz).
ReadinessProbe = Callable[[FastAPI], Awaitable[dict[str, str]]]


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


def client_address(scope: Scope, trusted: Iterable[str]) -> str | None:
    """The caller's address; X-Forwarded-For is believed only from a trusted proxy (the gateway)."""
    client = scope.get("client")
    peer: str | None = str(client[0]) if client else None
    if peer is not None and _is_trusted(peer, trusted):
        for name, value in scope.get("headers", []):
            if name == b"x-forwarded-for":
                return value.decode("latin-1").split(",")[0].strip() or peer
    return peer


def _is_trusted(peer: str, trusted: Iterable[str]) -> bool:
    try:
        addr = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(t, strict=False) for t in trusted)


class PlatformMiddleware:
    """Request id, body limit, metrics, access log and audit, as one pure-ASGI layer."""

    def __init__(self, app: ASGIApp, *, service: str, max_body_bytes: int,
                 unlimited_body_prefixes: Sequence[str] = (), trusted_proxies: Sequence[str] = ()):
        self.app = app
        self.service = service
        self.max_body = max_body_bytes
        self.unlimited = tuple(unlimited_body_prefixes)
        self.trusted = tuple(trusted_proxies) or ("127.0.0.0/8", "::1/128")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        token = request_id_var.set(rid)
        path: str = scope["path"]
        started = time.perf_counter()
        status_holder = {"status": 500}

        limited = scope["type"] == "http" and not path.startswith(self.unlimited)
        if limited:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                await self._too_large(send, rid)
                self._finish(scope, 413, started, path)
                request_id_var.reset(token)
                return
            receive = self._counting_receive(receive, status_holder)

        auditable = path not in INFRA_PATHS and not path.startswith("/_")
        audited = False

        async def send_wrapper(message: Message) -> None:
            nonlocal audited
            if status_holder.get("overflow"):
                # The app caught the overflow while parsing its body (FastAPI answers 400): answer 413.
                if message["type"] == "http.response.start":
                    status_holder["status"] = 413
                    await self._too_large(send, rid)
                return
            if status_holder.get("withheld"):
                return  # the audit could not be written: the answer was replaced by a 503
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                if auditable:
                    # The access is on record before the first byte of the answer leaves: a response the
                    # caller received always has its audit row, even if this process dies right after.
                    audited = True
                    if not await self._audit(scope, message["status"], rid):
                        status_holder["status"] = status_holder["withheld"] = 503
                        await _unavailable(send, rid)
                        return
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            elif message["type"] == "websocket.accept":
                status_holder["status"] = 101
                if auditable:
                    audited = True
                    if not await self._audit(scope, 101, rid):
                        status_holder["withheld"] = 503
                        await send({"type": "websocket.close", "code": 1011})
                        return
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except _BodyTooLarge:
            await self._too_large(send, rid)
            status_holder["status"] = 413
        finally:
            status = status_holder["status"]
            self._finish(scope, status, started, path)
            if auditable and not audited:  # refused before an answer started, or failed with an error
                await self._audit(scope, status, rid)
            request_id_var.reset(token)

    def _counting_receive(self, receive: Receive, holder: dict[str, int]) -> Receive:
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    holder["overflow"] = 1
                    raise _BodyTooLarge
            return message

        return wrapped

    async def _too_large(self, send: Send, rid: str) -> None:
        body = JSONResponse(
            error_body("payload_too_large", f"the request body is larger than {self.max_body} bytes"),
            status_code=413, headers={"x-request-id": rid},
        )
        try:
            await body({"type": "http"}, _empty_receive, send)
        except RuntimeError:  # response already started
            pass

    def _finish(self, scope: Scope, status: int, started: float, path: str) -> None:
        elapsed = time.perf_counter() - started
        route = route_template(scope)
        method = scope.get("method", "WS")
        REQUESTS.labels(self.service, method, route, str(status)).inc()
        LATENCY.labels(self.service, method, route).observe(elapsed)
        if path not in INFRA_PATHS:
            # The route template, never the raw path or query: those can carry names and ID numbers.
            log.info("request", extra={"method": method, "route": route, "status": status,
                                       "ms": round(elapsed * 1000, 2)})

    async def _audit(self, scope: Scope, status: int, rid: str) -> bool:
        """Write the request's audit row; False when it could not be written."""
        app = scope.get("app")
        writer: AuditWriter | None = getattr(getattr(app, "state", None), "audit", None)
        if writer is None:
            return True
        principal = scope.get("state", {}).get("principal")
        if not isinstance(principal, Principal):
            principal = None
        params = scope.get("path_params") or {}
        entry = AuditEntry.for_principal(
            principal,
            source=self.service,
            action=f"{scope.get('method', 'WS')} {route_template(scope)}",
            outcome=outcome_for_status(status),
            object_type=self.service,
            object_id=",".join(f"{k}={v}" for k, v in sorted(params.items())) or None,
            status_code=status,
            client_addr=client_address(scope, self.trusted),
            request_id=rid,
        )
        try:
            await writer.record(entry)
        except Exception:
            log.exception("audit write failed", extra={"route": route_template(scope)})
            return False
        return True


class _BodyTooLarge(Exception):
    pass


async def _unavailable(send: Send, rid: str) -> None:
    body = JSONResponse(
        error_body("unavailable", "the access could not be recorded in the audit log; retry shortly"),
        status_code=503, headers={"x-request-id": rid, "Retry-After": "5"},
    )
    await body({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


async def _check(name: str, probe: Callable[[], Awaitable[Any]]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe(), timeout=2.0)
        return name, "ok"
    except Exception as exc:  # readiness reports, it does not raise
        return name, f"down: {type(exc).__name__}"


async def _extra_check(probe: ReadinessProbe, app: FastAPI) -> dict[str, str]:
    try:
        return await probe(app)
    except Exception as exc:  # readiness reports, it does not raise
        return {getattr(probe, "__name__", "extra"): f"down: {type(exc).__name__}"}


def _no_telemetry() -> dict[str, Any]:
    """Our own metrics and logs cover requests; FastAPI's OpenTelemetry hooks cost 4-8% CPU per request."""
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    return {}


def build_token_verifier(settings: PlatformSettings) -> TokenVerifier | None:
    path = settings.public_key_path
    if not path.exists():
        log.warning("no public key yet; token verification unavailable", extra={"key_path": str(path)})
        return None
    return TokenVerifier(load_public_keys(path), issuer=settings.jwt_issuer, audience=settings.jwt_audience)


def create_service_app(
    name: str,
    *,
    title: str,
    description: str = "",
    routers: Sequence[APIRouter] = (),
    settings: PlatformSettings | None = None,
    unlimited_body_prefixes: Sequence[str] = (),
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    version: str = "0.1.0",
    extra_readiness: Sequence[ReadinessProbe] = (),
) -> FastAPI:
    """Build a service's FastAPI app with the platform's conventions."""
    s = settings or platform_settings()
    configure_logging(name, s.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from common.storage import open_store

        app.state.settings = s
        app.state.service_name = name
        app.state.db = await Database.connect(s.application_dsn(), min_size=s.db_pool_min, max_size=s.db_pool_max)
        app.state.redis = aioredis.from_url(s.require_redis_url())
        app.state.store = open_store(s)
        app.state.audit = AuditWriter(app.state.db)
        if getattr(app.state, "token_verifier", None) is None:
            app.state.token_verifier = build_token_verifier(s)
        for hook in on_startup:
            await hook(app)
        try:
            yield
        finally:
            for hook in on_shutdown:
                await hook(app)
            await app.state.redis.aclose()
            await app.state.db.close()

    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan, **_no_telemetry())
    install_error_handlers(app)
    app.add_middleware(
        PlatformMiddleware, service=name, max_body_bytes=s.max_body_bytes,
        unlimited_body_prefixes=unlimited_body_prefixes, trusted_proxies=s.trusted_proxies,
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        own, extra = await asyncio.gather(
            asyncio.gather(
                _check("database", app.state.db.ping),
                _check("redis", app.state.redis.ping),
                _check("storage", app.state.store.check),
            ),
            asyncio.gather(*(_extra_check(probe, app) for probe in extra_readiness)),
        )
        checks = dict(own)
        for part in extra:
            checks.update(part)
        ready = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "service": name, "checks": checks}
        if not ready:
            body["down"] = sorted(k for k, v in checks.items() if v != "ok")
        return JSONResponse(body, status_code=200 if ready else 503, headers=None if ready else {"Retry-After": "5"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    install_presigned_route(app)  # serves FileStore presigned URLs (/_objects/...); S3 presigns point at S3

    for router in routers:
        app.include_router(router)
    return app
