"""The consult service's calls to other parts of the platform, over HTTP (it never reads their schemas):

- the gateway's clinician directory (who a named specialist or an invitee is), with the caller's token;
- the owning services, to check that the requester can see an item before it is attached, with the caller's
  token (imaging QIDO-RS, ECG recording detail);
- the owning services' internal grant APIs (``X-Internal-Key``), from services/consult/grants.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx

from common.config import platform_settings
from common.errors import NotFound, Unavailable
from common.services import service
from services.consult.settings import consult_settings

TIMEOUT = 10.0


@dataclass(frozen=True)
class Person:
    user_id: UUID
    display_name: str
    facility_id: UUID
    roles: tuple[str, ...]


def _imaging_url() -> str:
    return (consult_settings().imaging_url or service("imaging").url).rstrip("/")


def _ecg_url() -> str:
    return (consult_settings().ecg_url or service("ecg").url).rstrip("/")


async def clinician(token: str, facility_id: UUID, user_id: UUID) -> Person | None:
    """The active clinician ``user_id`` of ``facility_id`` from the gateway's directory, or None."""
    url = f"{platform_settings().gateway_url.rstrip('/')}/api/directory/clinicians"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            r = await client.get(url, params={"facility_id": str(facility_id)},
                                 headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise Unavailable("the user directory is unavailable; retry shortly") from exc
    if r.status_code != 200:
        raise Unavailable(f"the user directory answered {r.status_code}; retry shortly")
    for entry in r.json():
        if entry.get("user_id") == str(user_id):
            return Person(UUID(entry["user_id"]), str(entry["display_name"]), UUID(entry["facility_id"]),
                          tuple(entry.get("roles") or ()))
    return None


async def require_visible_item(token: str, kind: str, ref: str) -> None:
    """NotFound unless the caller (by their token) can see the item in its owning service."""
    headers = {"Authorization": f"Bearer {token}"}
    if kind == "imaging_study":
        url, params = f"{_imaging_url()}/dicom-web/studies", {"StudyInstanceUID": ref, "limit": "1"}
    elif kind == "ecg_recording":
        try:
            UUID(ref)
        except ValueError:
            raise NotFound("no such ECG recording") from None
        url, params = f"{_ecg_url()}/api/ecg/recordings/{ref}", {}
    else:
        # No pathology service yet: a case cannot be checked, so it cannot be attached (honest 404).
        raise NotFound("pathology cases cannot be attached yet: the pathology service does not exist")
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            r = await client.get(url, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise Unavailable(f"the {kind.split('_')[0]} service is unavailable; retry shortly") from exc
    if r.status_code in (403, 404, 422):
        raise NotFound(f"no such {kind.replace('_', ' ')}")
    if r.status_code == 204:
        raise NotFound(f"no such {kind.replace('_', ' ')}")
    if r.status_code != 200:
        raise Unavailable(f"the owning service answered {r.status_code}; retry shortly")
    if kind == "imaging_study":
        found = r.json() if r.content else []
        if not any(_study_uid(s) == ref for s in found):
            raise NotFound("no such imaging study")


def _study_uid(study: dict[str, Any]) -> str | None:
    value = (study.get("0020000D") or {}).get("Value") or []
    return str(value[0]) if value else None


class GrantRefused(Exception):
    """The owning service refused the grant for good (e.g. the item no longer exists)."""


async def add_grant(kind: str, ref: str, grantee_user_id: UUID, consult_id: UUID, expires_at: datetime) -> str:
    """Push a read grant to the owning service; returns its grant id. GrantRefused on a definitive refusal,
    Unavailable (retry later) when it could not be reached."""
    key = platform_settings().internal_api_key
    if kind == "imaging_study":
        url = f"{_imaging_url()}/api/imaging/grants"
        body: dict[str, Any] = {"study_uid": ref}
    elif kind == "ecg_recording":
        url = f"{_ecg_url()}/api/ecg/grants"
        body = {"recording_id": ref}
    else:
        raise Unavailable("no pathology service yet: the grant waits until it exists")
    body.update({"grantee_user_id": str(grantee_user_id), "reason": "consult", "reference": str(consult_id),
                 "expires_at": expires_at.isoformat()})
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            r = await client.post(url, json=body, headers={"X-Internal-Key": key})
    except httpx.HTTPError as exc:
        raise Unavailable(f"{kind}: owning service unreachable") from exc
    if r.status_code in (200, 201):
        return str(r.json()["id"])
    if r.status_code in (404, 422):
        raise GrantRefused(f"{kind}: the owning service refused ({r.status_code})")
    raise Unavailable(f"{kind}: the owning service answered {r.status_code}")


async def remove_grant(kind: str, remote_id: str) -> None:
    """Withdraw a grant; a grant the owning service no longer knows counts as withdrawn."""
    key = platform_settings().internal_api_key
    if kind == "imaging_study":
        url = f"{_imaging_url()}/api/imaging/grants"
    elif kind == "ecg_recording":
        url = f"{_ecg_url()}/api/ecg/grants"
    else:
        return
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            r = await client.delete(url, params={"id": remote_id}, headers={"X-Internal-Key": key})
    except httpx.HTTPError as exc:
        raise Unavailable(f"{kind}: owning service unreachable") from exc
    if r.status_code not in (200, 204, 404):
        raise Unavailable(f"{kind}: the owning service answered {r.status_code}")
