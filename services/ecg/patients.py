"""The patient register lives in health_mgmt: a patient_id is checked over its API, with the caller's token."""

from __future__ import annotations

from uuid import UUID

import httpx

from common.errors import Invalid, Unavailable
from common.services import service
from services.ecg.settings import ecg_settings


def register_url() -> str:
    return (ecg_settings().health_mgmt_url or service("health_mgmt").url).rstrip("/")


async def require_visible_patient(token: str, patient_id: UUID) -> None:
    """422 unless the caller can see ``patient_id`` in the register; 503 when the register is down."""
    url = f"{register_url()}/api/health/patients/{patient_id}"
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            r = await client.get(url, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise Unavailable("the patient register (health_mgmt) is unavailable; retry shortly") from exc
    if r.status_code == 200:
        return
    if r.status_code in (403, 404):
        raise Invalid("patient_id: no such patient in your facility's register")
    raise Unavailable(f"the patient register answered {r.status_code}; retry shortly")
