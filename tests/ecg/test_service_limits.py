"""The body limits under /api/ecg/recordings (services/ecg/limits.py) on a body that grows past them while
streaming, without a Content-Length: uploads and JSON alike end in 413, never a 400 or a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.middleware import Middleware

from common.errors import install_error_handlers
from services.ecg.limits import EcgBodyLimit


class Body(BaseModel):
    text: str


def _app() -> FastAPI:
    app = FastAPI(middleware=[Middleware(EcgBodyLimit, upload_limit=4000, other_limit=200)])
    install_error_handlers(app)

    @app.post("/api/ecg/recordings")
    async def upload(request: Request) -> dict[str, int]:
        async with request.form() as form:
            return {"fields": len(form)}

    @app.put("/api/ecg/recordings/x/report")
    async def report(body: Body) -> dict[str, int]:
        return {"length": len(body.text)}

    return app


async def _chunks(total: int, prefix: bytes = b"") -> AsyncIterator[bytes]:
    yield prefix
    for _ in range(total // 100):
        yield b"a" * 100


async def test_streamed_bodies_past_the_limit_are_413() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://ecg") as client:
        small = await client.post("/api/ecg/recordings", files={"file": ("a.csv", b"x" * 100)})
        assert small.status_code == 200
        big = await client.post(
            "/api/ecg/recordings", content=_chunks(10_000, b'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\n'),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert big.status_code == 413 and big.json()["error"] == "payload_too_large"
        ok = await client.put("/api/ecg/recordings/x/report", json={"text": "short"})
        assert ok.status_code == 200
        long = await client.put("/api/ecg/recordings/x/report", content=_chunks(1000, b'{"text": "'),
                                headers={"Content-Type": "application/json"})
        assert long.status_code == 413 and long.json()["error"] == "payload_too_large"
        declared = await client.put("/api/ecg/recordings/x/report", json={"text": "y" * 500})
        assert declared.status_code == 413
