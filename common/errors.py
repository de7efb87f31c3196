"""The one error family and the handler that renders it as ``{"error": code, "detail": text}``."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("telehealth.errors")


class AppError(Exception):
    """Base of every error the platform answers with on purpose."""

    status = 500
    code = "internal"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        if code:
            self.code = code


class Invalid(AppError):
    status, code = 422, "invalid"


class BadRequest(AppError):
    status, code = 400, "bad_request"


class Unauthorized(AppError):
    status, code = 401, "unauthorized"

    def __init__(self, detail: str = "authentication required", **kw: Any):
        super().__init__(detail, **kw)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="telehealth"')


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class PayloadTooLarge(AppError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(AppError):
    status, code = 415, "unsupported_media_type"


class RateLimited(AppError):
    status, code = 429, "rate_limited"

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class Unavailable(AppError):
    status, code = 503, "unavailable"

    def __init__(self, detail: str, retry_after: int = 5):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class BadGateway(AppError):
    status, code = 502, "bad_gateway"


class GatewayTimeout(AppError):
    status, code = 504, "gateway_timeout"


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, detail), status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "malformed_json", "the request body is not valid JSON"
    parts = []
    for e in errors[:10]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return 422, "invalid", "; ".join(parts) or "the request is invalid"


def install_error_handlers(app: FastAPI) -> None:
    """Render every error in the platform's shape; never leak a stack trace."""

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, code, detail = _describe_validation(exc)
        return error_response(status, code, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such resource"
        return error_response(exc.status_code, code, detail, getattr(exc, "headers", None))

    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.CannotConnectNowError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(OSError)
    async def _down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency unavailable", extra={"error_type": type(exc).__name__, "path": request.url.path})
        return error_response(503, "unavailable", "a dependency is unavailable; retry shortly", {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        rid = request.headers.get("x-request-id", "")
        return error_response(500, "internal", f"internal error; request id {rid}".strip())
