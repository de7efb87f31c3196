"""Facility isolation: a user of one township centre can neither read, list, change nor delete another's
rows, through the gateway or by calling the service directly; the answer is 404, never a leak.

The route guard at the bottom makes every new endpoint with a path parameter join the matrix here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from common.auth import Principal
from tests.conftest import Platform, auth

# (service, method, path template) of every route that takes an object id, with the fixture key of the
# object it is exercised on. A new route fails test_every_id_route_is_covered until it is added here.
ID_ROUTES: dict[tuple[str, str, str], str] = {
    ("health_mgmt", "GET", "/api/health/patients/{patient_id}"): "patient",
    ("health_mgmt", "PATCH", "/api/health/patients/{patient_id}"): "patient",
    ("health_mgmt", "DELETE", "/api/health/patients/{patient_id}"): "patient",
    ("ecg", "GET", "/api/ecg/recordings/{recording_id}"): "ecg_recording",
    ("ecg", "GET", "/api/ecg/recordings/{recording_id}/signal"): "ecg_recording",
    ("ecg", "GET", "/api/ecg/recordings/{recording_id}/original"): "ecg_recording",
    ("ecg", "POST", "/api/ecg/recordings/{recording_id}/claim"): "ecg_recording",
    ("ecg", "GET", "/api/ecg/recordings/{recording_id}/report"): "ecg_recording",
    ("ecg", "PUT", "/api/ecg/recordings/{recording_id}/report"): "ecg_recording",
    ("ecg", "POST", "/api/ecg/recordings/{recording_id}/report/sign"): "ecg_recording",
    ("ecg", "POST", "/api/ecg/recordings/{recording_id}/report/addenda"): "ecg_recording",
    ("ecg", "GET", "/api/ecg/recordings/{recording_id}/report/pdf"): "ecg_recording",
    ("ecg", "GET", "/api/ecg/recordings/{recording_id}/report/dicom"): "ecg_recording",
    ("ecg", "POST", "/api/ecg/alerts/{alert_id}/acknowledge"): "ecg_alert",
    ("imaging", "POST", "/api/imaging/alerts/{alert_id}/acknowledge"): "imaging_alert",
    ("ecg", "DELETE", "/api/ecg/duty/{shift_id}"): "ecg_duty",
    ("imaging", "GET", "/api/imaging/studies/{study}/archive"): "imaging",
    ("imaging", "PUT", "/api/imaging/studies/{study}/priority"): "imaging",
    ("imaging", "POST", "/api/imaging/studies/{study}/claim"): "imaging",
    ("imaging", "POST", "/api/imaging/studies/{study}/assign"): "imaging",
    ("imaging", "GET", "/api/imaging/studies/{study}/report"): "imaging",
    ("imaging", "PUT", "/api/imaging/studies/{study}/report"): "imaging",
    ("imaging", "POST", "/api/imaging/studies/{study}/report/sign"): "imaging",
    ("imaging", "POST", "/api/imaging/studies/{study}/report/addenda"): "imaging",
    ("imaging", "GET", "/api/imaging/studies/{study}/report/pdf"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}"): "imaging",
    ("imaging", "POST", "/dicom-web/studies/{study}"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/series"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/instances"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/metadata"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/series/{series}"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/series/{series}/instances"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/series/{series}/metadata"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/series/{series}/instances/{sop}"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/series/{series}/instances/{sop}/metadata"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/series/{series}/instances/{sop}/frames/{frames}"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/series/{series}/instances/{sop}/bulkdata/{tag_path}"): "imaging",
    # sharing (services/imaging/api_sharing.py): a share or export id of another facility is filled with a
    # random id ("patient" is any uuid): the answer must equal a missing one's
    ("imaging", "POST", "/api/imaging/studies/{study}/shares"): "imaging",
    ("imaging", "GET", "/api/imaging/studies/{study}/shares"): "imaging",
    ("imaging", "DELETE", "/api/imaging/studies/{study}/shares/{share_id}"): "patient",
    ("imaging", "GET", "/api/imaging/exports/{export_id}"): "patient",
    ("imaging", "GET", "/api/imaging/exports/{export_id}/download"): "patient",
    ("imaging", "GET", "/api/imaging/shared/series/{series}/instances/{sop}"): "imaging",
    ("imaging", "GET", "/api/imaging/shared/series/{series}/instances/{sop}/rendered"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/rendered"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/thumbnail"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/series/{series}/rendered"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/series/{series}/thumbnail"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/series/{series}/instances/{sop}/rendered"): "imaging",
    ("imaging", "GET", "/dicom-web/studies/{study}/series/{series}/instances/{sop}/thumbnail"): "imaging",
    ("imaging", "GET",
     "/dicom-web/studies/{study}/series/{series}/instances/{sop}/frames/{frames}/rendered"): "imaging",
    # consult workflow (services/consult/api.py): a submitted consult of 城关镇 to 清河县人民医院; a session id
    # of another facility is filled with a random id ("patient"): the answer must equal a missing one's
    ("consult", "GET", "/api/consult/consults/{consult_id}"): "consult",
    ("consult", "PATCH", "/api/consult/consults/{consult_id}"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/submit"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/accept"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/decline"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/cancel"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/reassign"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/close"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/participants"): "consult",
    ("consult", "DELETE", "/api/consult/consults/{consult_id}/participants/{user_id}"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/consent"): "consult",
    ("consult", "DELETE", "/api/consult/consults/{consult_id}/consent"): "consult",
    ("consult", "GET", "/api/consult/consults/{consult_id}/consent/file"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/attachments"): "consult",
    ("consult", "DELETE", "/api/consult/consults/{consult_id}/attachments/{attachment_id}"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/sessions"): "consult",
    ("consult", "POST", "/api/consult/sessions/{session_id}/end"): "patient",
    # consult opinion, scheduling, chat (api_opinion.py, api_schedule.py, api_chat.py); an availability window
    # of another facility is filled with a random id ("patient")
    ("consult", "GET", "/api/consult/consults/{consult_id}/opinion"): "consult",
    ("consult", "PUT", "/api/consult/consults/{consult_id}/opinion"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/opinion/sign"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/opinion/addenda"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/opinion/acknowledge"): "consult",
    ("consult", "GET", "/api/consult/consults/{consult_id}/opinion.pdf"): "consult",
    ("consult", "DELETE", "/api/consult/availability/{availability_id}"): "patient",
    ("consult", "POST", "/api/consult/consults/{consult_id}/booking"): "consult",
    ("consult", "GET", "/api/consult/consults/{consult_id}/booking"): "consult",
    ("consult", "GET", "/api/consult/consults/{consult_id}/calendar.ics"): "consult",
    ("consult", "GET", "/api/consult/consults/{consult_id}/messages"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/messages"): "consult",
    ("consult", "POST", "/api/consult/consults/{consult_id}/messages/files"): "consult",
    ("consult", "GET", "/api/consult/consults/{consult_id}/messages/{message_id}/file"): "consult",
    # video rooms (api_rooms.py): a recording id of another facility is filled with a random id (any uuid)
    ("consult", "GET", "/api/consult/consults/{consult_id}/recordings"): "consult",
    ("consult", "GET", "/api/consult/recordings/{recording_id}/file"): "patient",
}

BODIES = {"PATCH": {"version": 1, "address": "changed by another facility"}}
# Routes whose body differs from their method's (a body that validates, so the answer is about the object).
ROUTE_BODIES: dict[str, dict[str, object]] = {
    "/api/ecg/recordings/{recording_id}/report": {"version": 1, "conclusion": "changed by another facility"},
    "/api/ecg/recordings/{recording_id}/report/sign": {"version": 1},
    "/api/ecg/recordings/{recording_id}/report/addenda": {"text": "added by another facility"},
    "/api/imaging/studies/{study}/shares": {"expires_at": "2099-01-01T00:00:00+00:00"},
    "/api/imaging/studies/{study}/priority": {"priority": "stat"},
    "/api/imaging/studies/{study}/assign": {"user_id": "00000000-0000-4000-8000-000000000000"},
    "/api/imaging/studies/{study}/report": {"version": 1, "impression": "changed by another facility"},
    "/api/imaging/studies/{study}/report/sign": {"version": 1},
    "/api/imaging/studies/{study}/report/addenda": {"text": "added by another facility"},
    "/api/consult/consults/{consult_id}/decline": {"reason": "declined by another facility"},
    "/api/consult/consults/{consult_id}/cancel": {"reason": "cancelled by another facility"},
    "/api/consult/consults/{consult_id}/reassign": {"consultant_id": "00000000-0000-4000-8000-000000000000"},
    "/api/consult/consults/{consult_id}/participants": {"user_id": "00000000-0000-4000-8000-000000000000"},
    "/api/consult/consults/{consult_id}/consent": {"method": "e_consent", "signer_name": "x", "relation": "本人",
                                                   "statement_version": "2026-01"},
    "/api/consult/consults/{consult_id}/attachments": {"kind": "ecg_recording",
                                                       "ref": "00000000-0000-4000-8000-000000000000"},
    "/api/consult/consults/{consult_id}/opinion": {"version": 1, "diagnosis": "changed by another facility"},
    "/api/consult/consults/{consult_id}/opinion/sign": {"version": 1},
    "/api/consult/consults/{consult_id}/opinion/addenda": {"text": "added by another facility"},
    "/api/consult/consults/{consult_id}/booking": {"slot_id": "00000000-0000-4000-8000-000000000000"},
    "/api/consult/consults/{consult_id}/messages": {"text": "posted by another facility"},
}


def valid_id_number(seed: int) -> str:
    from services.health_mgmt.identity import id_check_digit

    first17 = f"370102198{seed % 10}0{(seed % 9) + 1}1{seed % 10}{seed % 1000:03d}"[:17]
    return first17 + id_check_digit(first17)


@pytest.fixture(scope="module")
def objects_of_a(platform: Platform, login: Callable[[str], str], celery_worker: object) -> dict[str, Any]:
    """Objects owned by 城关镇卫生院 (doctor_a), made through the gateway."""
    from tests.ecg.ecg_service_support import critical_recording_with_alert
    from tests.imaging.imaging_support import critical_alert_of

    token = login("doctor_a")
    r = httpx.post(
        f"{platform.gateway_url}/api/health/patients",
        json={"name": "测试患者甲", "id_number": valid_id_number(uuid.uuid4().int), "phone": "13800138000"},
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    return {"patient": r.json()["id"], **critical_recording_with_alert(platform.gateway_url, token),
            "imaging": imaging_study(platform.gateway_url, token),
            "imaging_alert": critical_alert_of(platform.gateway_url, token, login("specialist")),
            "ecg_duty": future_duty_shift(platform.gateway_url, login("specialist")),
            "consult": consult_of_a(platform.gateway_url, token)}


def consult_of_a(gateway_url: str, token: str) -> dict[str, str]:
    """A submitted consult of 城关镇 asking 清河县人民医院 (ids of the consult routes' path parameters)."""
    from tests.consult.consult_support import COUNTY, submitted

    return {"consult_id": submitted(gateway_url, token, target=COUNTY)["id"], "attachment_id": str(uuid.uuid4()),
            "message_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4())}


def imaging_study(gateway_url: str, token: str) -> dict[str, str]:
    """A one-instance study of 城关镇 stored by STOW-RS: the ids of the imaging routes' path parameters."""
    from tests.imaging.imaging_support import make_instance, read, stow, uid

    data = make_instance(study=uid(), series=uid())
    assert stow(gateway_url, token, [data]).status_code == 200
    ds = read(data)
    return {"study": ds.StudyInstanceUID, "series": ds.SeriesInstanceUID, "sop": ds.SOPInstanceUID,
            "frames": "1", "tag_path": "7FE00010"}


def future_duty_shift(gateway_url: str, token: str) -> str:
    """A shift on the roster of 清河县人民医院 (a month ahead: nobody is put on duty now by it)."""
    from datetime import UTC, datetime, timedelta

    from tests.ecg.ecg_service_support import go_on_duty

    r = go_on_duty(gateway_url, token, starts_at=(datetime.now(UTC) + timedelta(days=30)).isoformat(), hours=1)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _fill(template: str, object_id: str | dict[str, str]) -> str:
    """The path with its id parameter(s) filled in (a parameter may sit mid-path: .../{id}/report); a dict
    fills several by name (imaging: {study}/series/{series}/instances/{sop})."""
    if isinstance(object_id, dict):
        return re.sub(r"\{([^}:]+)[^}]*\}", lambda m: str(object_id[m.group(1)]), template)
    return re.sub(r"\{[^}]+\}", object_id, template)


def _bases(platform: Platform, service: str) -> list[str]:
    return [platform.gateway_url, platform.service_url(service)]


@pytest.mark.parametrize(("service", "method", "template"), sorted(ID_ROUTES))
def test_other_township_gets_404(platform: Platform, login, objects_of_a, service, method, template) -> None:
    token_b = login("doctor_b")
    object_id = objects_of_a[ID_ROUTES[(service, method, template)]]
    path = _fill(template, object_id)
    for base in _bases(platform, service):
        body = ROUTE_BODIES.get(template, BODIES.get(method))
        r = httpx.request(method, base + path, headers=auth(token_b), json=body)
        assert r.status_code == 404, f"{base}{path}: {r.status_code} {r.text}"
        assert r.json()["error"] == "not_found"
        missing = httpx.request(method, base + _fill(template, str(uuid.uuid4())), headers=auth(token_b), json=body)
        assert missing.json() == r.json(), "a hidden row must answer exactly like a missing one"
    # and it is untouched: the owner still reads it at version 1
    if service == "health_mgmt":
        owner = httpx.get(f"{platform.gateway_url}/api/health/patients/{object_id}", headers=auth(login("doctor_a")))
        assert owner.status_code == 200 and owner.json()["version"] == 1
    elif service == "imaging":  # the study still holds its one instance
        ids = objects_of_a["imaging"]
        owner = httpx.get(f"{platform.gateway_url}/dicom-web/studies", params={"StudyInstanceUID": ids["study"]},
                          headers=auth(login("doctor_a"))).json()
        assert owner[0]["00201208"]["Value"] == [1]
    elif template.startswith("/api/ecg/duty"):  # the shift is still on its facility's roster
        from datetime import UTC, datetime, timedelta

        now = datetime.now(UTC)
        window = {"from": now.isoformat(), "to": (now + timedelta(days=60)).isoformat()}
        roster = httpx.get(f"{platform.gateway_url}/api/ecg/duty", params=window,
                           headers=auth(login("specialist"))).json()["items"]
        assert object_id in {s["id"] for s in roster}
    else:  # ecg: no report was claimed or signed, the alert is still open
        rec = httpx.get(f"{platform.gateway_url}/api/ecg/recordings/{objects_of_a['ecg_recording']}",
                        headers=auth(login("doctor_a"))).json()
        assert rec["report_id"] is None and rec["status"] == "ready"
        open_alerts = httpx.get(f"{platform.gateway_url}/api/ecg/alerts", headers=auth(login("doctor_a"))).json()
        assert objects_of_a["ecg_alert"] in {a["id"] for a in open_alerts["items"]}


def test_lists_do_not_leak(platform: Platform, login, objects_of_a) -> None:
    token_b = login("doctor_b")
    for base in _bases(platform, "health_mgmt"):
        listing = httpx.get(f"{base}/api/health/patients", params={"limit": 200}, headers=auth(token_b))
        assert listing.status_code == 200
        assert objects_of_a["patient"] not in {p["id"] for p in listing.json()["items"]}
        owner = httpx.get(f"{platform.gateway_url}/api/health/patients/{objects_of_a['patient']}",
                          headers=auth(login("doctor_a"))).json()
        search = httpx.get(f"{base}/api/health/patients", params={"q": owner["id_number"]}, headers=auth(token_b))
        assert search.json()["items"] == []


def test_reading_centre_sees_its_townships(platform: Platform, login, objects_of_a) -> None:
    """The county hospital reads for 城关镇: it may see the patient but not change it."""
    token = login("specialist")
    pid = objects_of_a["patient"]
    assert httpx.get(f"{platform.gateway_url}/api/health/patients/{pid}", headers=auth(token)).status_code == 200
    r = httpx.patch(f"{platform.gateway_url}/api/health/patients/{pid}", json={"version": 1, "address": "x"},
                    headers=auth(token))
    assert r.status_code == 403
    other = httpx.get(f"{platform.gateway_url}/api/health/patients/{pid}", headers=auth(login("specialist_city")))
    assert other.status_code == 404


def test_bureau_analyst_sees_no_patient(platform: Platform, login, objects_of_a) -> None:
    token = login("analyst")
    r = httpx.get(f"{platform.gateway_url}/api/health/patients/{objects_of_a['patient']}", headers=auth(token))
    assert r.status_code == 403
    assert httpx.get(f"{platform.gateway_url}/api/health/patients", headers=auth(token)).status_code == 403


async def test_row_level_security_is_a_second_wall(db, objects_of_a) -> None:
    """Even a query without any facility filter returns nothing of facility A to a principal of B."""
    async with db.transaction(_principal_of_other_facility()) as conn:
        seen = await conn.fetchval("SELECT count(*) FROM health_mgmt.patients WHERE id = $1",
                                   uuid.UUID(objects_of_a["patient"]))
        assert seen == 0
        changed = await conn.execute("UPDATE health_mgmt.patients SET address = 'x' WHERE id = $1",
                                     uuid.UUID(objects_of_a["patient"]))
        assert changed == "UPDATE 0"
    async with db.transaction() as conn:  # no principal at all: nothing is visible
        assert await conn.fetchval("SELECT count(*) FROM health_mgmt.patients") == 0


async def test_ecg_row_level_security_is_a_second_wall(db, objects_of_a) -> None:
    """The ECG tables answer nothing of facility A to a principal of B, even without a WHERE on facility."""
    rid, aid = uuid.UUID(objects_of_a["ecg_recording"]), uuid.UUID(objects_of_a["ecg_alert"])
    async with db.transaction(_principal_of_other_facility()) as conn:
        assert await conn.fetchval("SELECT count(*) FROM ecg.recordings WHERE id = $1", rid) == 0
        assert await conn.fetchval("SELECT count(*) FROM ecg.analyses WHERE recording_id = $1", rid) == 0
        assert await conn.fetchval("SELECT count(*) FROM ecg.alerts WHERE id = $1", aid) == 0
        changed = await conn.execute("UPDATE ecg.alerts SET status = 'acknowledged', acknowledged_at = now()"
                                     " WHERE id = $1", aid)
        assert changed == "UPDATE 0"


def _principal_of_other_facility() -> Principal:
    return Principal(user_id=uuid.uuid4(), username="probe", roles=frozenset({"township_doctor"}),
                     facility_id=uuid.uuid4())


def test_every_id_route_is_covered(platform: Platform) -> None:
    """Every service route with a path parameter must be in ID_ROUTES (so its isolation is tested)."""
    from common.services import SERVICES

    missing = []
    for spec in SERVICES:
        schema = httpx.get(f"{platform.service_url(spec.name)}/openapi.json").json()
        for path, ops in schema.get("paths", {}).items():
            if "{" not in path:
                continue
            for method in ops:
                if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"} and \
                        (spec.name, method.upper(), path) not in ID_ROUTES:
                    missing.append(f"{spec.name} {method.upper()} {path}")
    assert not missing, "routes without an isolation test: " + ", ".join(missing)
