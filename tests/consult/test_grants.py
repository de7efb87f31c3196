"""The ECG service's internal grant API and the consult service's grant retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from common.config import DEV_INTERNAL_API_KEY
from tests.conftest import auth
from tests.consult.consult_support import CITY, draft, ecg_recording, econsent, get, in_db, post
from tests.ecg.ecg_service_support import user_id_of


def test_ecg_grant_api(platform, login) -> None:
    ecg = platform.service_url("ecg")
    doctor, outsider = login("doctor_a"), login("specialist_city")
    rid = ecg_recording(platform.gateway_url, doctor)
    body = {"recording_id": rid, "grantee_user_id": user_id_of(outsider), "reason": "consult", "reference": "t",
            "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    assert httpx.post(f"{ecg}/api/ecg/grants", json=body).status_code == 401
    assert httpx.post(f"{ecg}/api/ecg/grants", json=body, headers={"X-Internal-Key": "wrong"}).status_code == 401
    key = {"X-Internal-Key": DEV_INTERNAL_API_KEY}
    missing = httpx.post(f"{ecg}/api/ecg/grants", json={**body, "recording_id": "00000000-0000-4000-8000-000000000001"},
                         headers=key)
    assert missing.status_code == 404
    assert httpx.get(f"{platform.gateway_url}/api/ecg/recordings/{rid}", headers=auth(outsider)).status_code == 404
    g = httpx.post(f"{ecg}/api/ecg/grants", json=body, headers=key)
    assert g.status_code == 201, g.text
    assert httpx.get(f"{platform.gateway_url}/api/ecg/recordings/{rid}", headers=auth(outsider)).status_code == 200
    # a grant opens reads only: no claiming the recording
    claim = httpx.post(f"{platform.gateway_url}/api/ecg/recordings/{rid}/claim", headers=auth(outsider))
    assert claim.status_code == 404
    assert httpx.delete(f"{ecg}/api/ecg/grants", params={"id": g.json()["id"]}, headers=key).status_code == 204
    assert httpx.get(f"{platform.gateway_url}/api/ecg/recordings/{rid}", headers=auth(outsider)).status_code == 404
    # an expired grant opens nothing
    old = {**body, "expires_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
    assert httpx.post(f"{ecg}/api/ecg/grants", json=old, headers=key).status_code == 201
    assert httpx.get(f"{platform.gateway_url}/api/ecg/recordings/{rid}", headers=auth(outsider)).status_code == 404


def test_pending_grants_are_retried(platform, stack, login, monkeypatch) -> None:
    """A grant the owning service could not take stays pending; the beat task's function applies it later."""
    from uuid import UUID

    from common.auth import system_principal
    from services.consult import grants

    base = platform.gateway_url
    doctor, consultant = login("doctor_a"), login("specialist_city")
    rid = ecg_recording(base, doctor)
    c = draft(base, doctor, target=CITY)
    assert post(base, doctor, f"/consults/{c['id']}/attachments", {"kind": "ecg_recording", "ref": rid}).status_code \
        == 201
    assert econsent(base, doctor, c["id"]).status_code == 201
    assert post(base, doctor, f"/consults/{c['id']}/submit").status_code == 200
    assert post(base, consultant, f"/consults/{c['id']}/accept").status_code == 200
    assert httpx.get(f"{base}/api/ecg/recordings/{rid}", headers=auth(consultant)).status_code == 200

    # as if the ECG service had been down at accept time: back to pending, the remote grant withdrawn
    async def reset(db: Any) -> str:
        async with db.transaction(system_principal()) as conn:
            remote_id = await conn.fetchval("SELECT remote_grant_id FROM consult.item_grants WHERE consult_id = $1",
                                            UUID(c["id"]))
            await conn.execute("UPDATE consult.item_grants SET status = 'pending', remote_grant_id = NULL"
                               " WHERE consult_id = $1", UUID(c["id"]))
        return str(remote_id)

    remote_id = in_db(stack.database_url, reset)
    key = {"X-Internal-Key": DEV_INTERNAL_API_KEY}
    assert httpx.delete(f"{platform.service_url('ecg')}/api/ecg/grants", params={"id": remote_id},
                        headers=key).status_code == 204
    assert httpx.get(f"{base}/api/ecg/recordings/{rid}", headers=auth(consultant)).status_code == 404
    for name in ("ECG_URL", "IMAGING_URL", "GATEWAY_URL"):  # this process calls the services like the worker
        monkeypatch.setenv(name, platform.env[name])
    counts = in_db(stack.database_url, grants.apply)
    assert counts.get("active", 0) >= 1
    assert httpx.get(f"{base}/api/ecg/recordings/{rid}", headers=auth(consultant)).status_code == 200
    assert [g["status"] for g in get(base, doctor, f"/consults/{c['id']}").json()["grants"]] == ["active"]
