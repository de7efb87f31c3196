"""Every answered request has its audit row first; many concurrent entries share commits and keep the chain."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import APIRouter

from common.app import PlatformMiddleware
from common.audit import AuditEntry, AuditWriter, verify_chain
from common.errors import install_error_handlers


class _FailingWriter:
    async def record(self, entry: AuditEntry) -> None:
        raise ConnectionError("database unreachable")


class _ListWriter:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


def _app(writer: Any) -> Any:
    from fastapi import FastAPI

    router = APIRouter()

    @router.get("/api/test/secret/{item}")
    async def secret(item: str) -> dict[str, str]:
        return {"patient": "张三", "item": item}

    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(PlatformMiddleware, service="test", max_body_bytes=1024)
    app.include_router(router)
    app.state.audit = writer
    return app


async def test_no_answer_leaves_without_its_audit_row() -> None:
    transport = httpx.ASGITransport(app=_app(_FailingWriter()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/api/test/secret/42")
    assert r.status_code == 503
    assert r.json()["error"] == "unavailable" and r.headers["retry-after"] == "5"
    assert "张三" not in r.text


async def test_audit_row_names_route_and_object() -> None:
    writer = _ListWriter()
    transport = httpx.ASGITransport(app=_app(writer))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/api/test/secret/42")).status_code == 200
        assert (await client.get("/api/test/nothing")).status_code == 404
    assert [(e.action, e.object_id, e.status_code, e.outcome) for e in writer.entries] == [
        ("GET /api/test/secret/{item}", "item=42", 200, "success"),
        ("GET unmatched", None, 404, "denied"),
    ]


async def test_concurrent_entries_are_all_committed_in_one_valid_chain(db: Any) -> None:
    writer = AuditWriter(db)
    marker = f"group-commit-{uuid.uuid4().hex[:8]}"
    await asyncio.gather(*(
        writer.record(AuditEntry(source="test", action=marker, outcome="success", object_id=str(i)))
        for i in range(120)
    ))
    async with db.transaction() as conn:
        ids = {r["object_id"] for r in await conn.fetch(
            "SELECT object_id FROM audit.events WHERE action = $1", marker)}
        report = await verify_chain(conn)
    assert ids == {str(i) for i in range(120)}
    assert report.ok, report
