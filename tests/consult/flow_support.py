"""Consults brought to a given state through the gateway, for the opinion, scheduling and chat tests.

doctor_a (城关镇卫生院) asks 清河县人民医院; ``specialist`` (孙主任, of that hospital) accepts and is the
consultant. doctor_b (李家镇) takes no part and may not see it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import auth


def county_hospital_id() -> str:
    from gateway.identity.seed import COUNTY_HOSPITAL, demo_facility

    return str(demo_facility(COUNTY_HOSPITAL).id)


def api(gateway: str, path: str) -> str:
    return f"{gateway}/api/consult{path}"


def submitted_consult(gateway: str, requester: str, *, specialty: str = "心内科") -> dict[str, Any]:
    """A consult of doctor_a to the county hospital, with e-consent, submitted."""
    h = auth(requester)
    r = httpx.post(api(gateway, "/consults"), headers=h, timeout=20, json={
        "target_facility_id": county_hospital_id(), "specialty": specialty, "urgency": "urgent",
        "reason": "胸痛待查", "question": "是否急性冠脉综合征?", "clinical_summary": "男,63岁,胸痛3小时。",
        "patient_name": "测试患者", "patient_sex": "male", "patient_age": 63,
    })
    assert r.status_code == 201, r.text
    consult = r.json()
    r = httpx.post(api(gateway, f"/consults/{consult['id']}/consent"), headers=h, timeout=20, json={
        "method": "e_consent", "signer_name": "测试患者", "relation": "本人", "statement_version": "2026-01"})
    assert r.status_code == 201, r.text
    r = httpx.post(api(gateway, f"/consults/{consult['id']}/submit"), headers=h, timeout=20)
    assert r.status_code == 200, r.text
    return dict(r.json())


def accepted_consult(gateway: str, requester: str, consultant: str, **kw: Any) -> dict[str, Any]:
    consult = submitted_consult(gateway, requester, **kw)
    r = httpx.post(api(gateway, f"/consults/{consult['id']}/accept"), headers=auth(consultant), json={},
                   timeout=20)
    assert r.status_code == 200, r.text
    return dict(r.json())


def publish_window(gateway: str, specialist: str, *, start_in: timedelta, slots: int = 2,
                   minutes: int = 30) -> dict[str, Any]:
    """A window of ``slots`` slots of the specialist, starting ``start_in`` from now (whole minutes)."""
    start = (datetime.now(UTC) + start_in).replace(second=0, microsecond=0)
    r = httpx.post(api(gateway, "/availability"), headers=auth(specialist), timeout=20, json={
        "starts_at": start.isoformat(), "ends_at": (start + timedelta(minutes=minutes * slots)).isoformat(),
        "slot_minutes": minutes})
    assert r.status_code == 201, r.text
    return dict(r.json())
