"""Helpers of the consult workflow tests: the demo facilities, drafts with consent, items to attach."""

from __future__ import annotations

from typing import Any

import httpx
import jwt

from common.auth import Principal
from tests.conftest import auth

API = "/api/consult"


def facility_id(code: str) -> str:
    from gateway.identity.seed import DEMO_FACILITIES

    return str(next(f.id for f in DEMO_FACILITIES if f.code == code))


COUNTY = facility_id("QH-COUNTY")
CITY = facility_id("QH-CITY1")


def principal_of(token: str) -> Principal:
    """The Principal a service builds from ``token`` (read, not verified: it came from our gateway)."""
    c = jwt.decode(token, options={"verify_signature": False})
    return Principal(user_id=c["sub"], username=c["name"], display_name=c.get("dn") or c["name"],
                     roles=frozenset(c["roles"]), facility_id=c["fac"], serves=frozenset(c.get("serves") or ()),
                     region_id=c.get("region"))


def draft(base: str, token: str, target: str = COUNTY, **fields: Any) -> dict[str, Any]:
    body = {"target_facility_id": target, "specialty": "心内科", "urgency": "urgent", "reason": "胸痛待查",
            "question": "是否需要转诊？", "clinical_summary": "男，58岁，胸痛2小时。", "patient_name": "测试患者",
            "patient_sex": "male", "patient_age": 58, **fields}
    r = httpx.post(f"{base}{API}/consults", json=body, headers=auth(token), timeout=30)
    assert r.status_code == 201, r.text
    return dict(r.json())


def econsent(base: str, token: str, consult_id: str) -> httpx.Response:
    return httpx.post(f"{base}{API}/consults/{consult_id}/consent", headers=auth(token), timeout=30,
                      json={"method": "e_consent", "signer_name": "测试患者", "relation": "本人",
                            "statement_version": "2026-01"})


def post(base: str, token: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(f"{base}{API}{path}", json=body, headers=auth(token), timeout=60)


def get(base: str, token: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{base}{API}{path}", params=params, headers=auth(token), timeout=30)


def submitted(base: str, token: str, target: str = COUNTY, **fields: Any) -> dict[str, Any]:
    c = draft(base, token, target, **fields)
    assert econsent(base, token, c["id"]).status_code == 201
    r = post(base, token, f"/consults/{c['id']}/submit")
    assert r.status_code == 200, r.text
    return dict(r.json())


def imaging_study(base: str, token: str) -> str:
    from tests.imaging.imaging_support import make_instance, read, stow, uid

    data = make_instance(study=uid(), series=uid())
    assert stow(base, token, [data]).status_code == 200
    return str(read(data).StudyInstanceUID)


def ecg_recording(base: str, token: str) -> str:
    from tests.ecg.ecg_service_support import csv_bytes, sinus, upload

    r = upload(base, token, [("ecg.csv", csv_bytes(sinus(seconds=5)))])
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def in_db(database_url: str, work: Any) -> Any:
    """Run ``await work(db)`` on a Database of its own, in an event loop of its own (for sync tests)."""
    import asyncio

    from common.db import Database

    async def run() -> Any:
        db = await Database.connect(database_url, max_size=2)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


def transitions(database_url: str, consult_id: str, steps: list[tuple[str, str]]) -> None:
    """Take ``(token, action)`` steps through service.transition (the door the opinion module uses)."""
    from uuid import UUID

    from services.consult import access, service

    async def work(db: Any) -> None:
        for token, action in steps:
            who = principal_of(token)
            async with db.transaction(who) as conn:
                row = await access.visible_consult(conn, who, UUID(consult_id), lock=True)
                await service.transition(conn, who, row, action)

    in_db(database_url, work)
