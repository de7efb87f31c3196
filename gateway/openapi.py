"""One OpenAPI document for the whole platform at the gateway's ``/openapi.json`` (Swagger UI at ``/docs``).

The gateway's own schema merged with each service's ``/openapi.json``, fetched when asked and cached for a
short while. A service that is down is left out (or its last good copy kept) and named under
``info.x-unavailable-services``; the document is still served. Operations are tagged by service, and a
component whose name another service already uses for a different shape is renamed ``<service>__<name>``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

import aiohttp
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.routing import Route

from common.services import SERVICES, owner_of
from gateway.upstreams import fetch_json

log = logging.getLogger("telehealth.openapi")

CACHE_SECONDS = 30.0
FETCH_TIMEOUT = 2.0
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "An access token from POST /auth/token.",
}


class ServiceDocuments:
    """Each service's last fetched OpenAPI document, refreshed at most every ``CACHE_SECONDS``."""

    def __init__(self) -> None:
        self._docs: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    async def current(self, app: FastAPI) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """(documents by service name, names of services that could not be asked just now)."""
        async with self._lock:
            now = time.monotonic()
            stale = [spec for spec in SERVICES if now - self._docs.get(spec.name, (-1e9, {}))[0] > CACHE_SECONDS]
            results = await asyncio.gather(*(self._fetch(app, spec.name) for spec in stale))
            missing = []
            for spec, doc in zip(stale, results, strict=True):
                if doc is not None:
                    self._docs[spec.name] = (now, doc)
                else:
                    missing.append(spec.name)
            return {name: doc for name, (_, doc) in self._docs.items()}, missing

    async def _fetch(self, app: FastAPI, name: str) -> dict[str, Any] | None:
        spec = next(s for s in SERVICES if s.name == name)
        try:
            status, doc = await fetch_json(app, spec, "/openapi.json", FETCH_TIMEOUT)
        except (TimeoutError, aiohttp.ClientError, OSError, RuntimeError) as exc:
            log.info("service schema unavailable", extra={"service": name, "error_type": type(exc).__name__})
            return None
        if status != 200 or not isinstance(doc, dict):
            return None
        return doc


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: (renames.get(v, v) if k == "$ref" and isinstance(v, str) else _rewrite_refs(v, renames))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def merge_documents(base: dict[str, Any], docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The gateway's document with every service's paths and components merged in, tagged by service."""
    out = copy.deepcopy(base)
    paths: dict[str, Any] = out.setdefault("paths", {})
    components: dict[str, dict[str, Any]] = out.setdefault("components", {})
    tags: list[dict[str, Any]] = list(out.get("tags", []))
    for spec in SERVICES:
        doc = docs.get(spec.name)
        if doc is None:
            continue
        renames: dict[str, str] = {}
        for section, entries in (doc.get("components") or {}).items():
            taken = components.get(section, {})
            for key, value in (entries or {}).items():
                if key in taken and taken[key] != value:
                    renames[f"#/components/{section}/{key}"] = f"#/components/{section}/{spec.name}__{key}"
        doc = _rewrite_refs(doc, renames) if renames else copy.deepcopy(doc)
        for section, entries in (doc.get("components") or {}).items():
            target = components.setdefault(section, {})
            for key, value in (entries or {}).items():
                renamed = renames.get(f"#/components/{section}/{key}")
                target[renamed.rsplit("/", 1)[1] if renamed else key] = value
        sub_tags: set[str] = set()
        for path, item in (doc.get("paths") or {}).items():
            owner = owner_of(path)
            if owner is None or owner.name != spec.name:
                continue  # the gateway would not route it there: leave it out
            for method, operation in item.items():
                if method in _METHODS and isinstance(operation, dict):
                    own = [t for t in operation.get("tags") or [] if t != spec.name]
                    operation["tags"] = [spec.name] + [f"{spec.name} · {t}" for t in own]
                    sub_tags.update(own)
                    operation["x-service"] = spec.name
            paths[path] = item
        tags.append({"name": spec.name, "description": spec.title})
        tags.extend({"name": f"{spec.name} · {t}"} for t in sorted(sub_tags))
    components.setdefault("securitySchemes", {}).setdefault("bearerAuth", _BEARER)
    out.setdefault("security", [{"bearerAuth": []}])
    out["tags"] = tags
    return out


def install_openapi(app: FastAPI) -> None:
    """Serve the aggregated document at ``app.openapi_url`` in place of FastAPI's own."""
    documents = ServiceDocuments()
    url = app.openapi_url or "/openapi.json"

    async def aggregated_openapi(request: Request) -> JSONResponse:
        base = app.openapi()
        docs, missing = await documents.current(app)
        merged = merge_documents(base, docs)
        if missing:
            merged.setdefault("info", {})["x-unavailable-services"] = sorted(missing)
        return JSONResponse(merged)

    route = Route(url, aggregated_openapi, methods=["GET"], include_in_schema=False)
    for index, existing in enumerate(app.router.routes):
        if getattr(existing, "path", None) == url:
            app.router.routes[index] = route
            return
    app.router.routes.append(route)
