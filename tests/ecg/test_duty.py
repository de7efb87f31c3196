"""The reading centre's duty roster (值班表) and what it does to critical values (危急值).

Roster: a specialist puts themselves on duty, the facility_admin schedules a specialist of the facility;
times are validated (422), a reader's shifts never overlap (409), other facilities see nothing (404).
Alerts: a VT of 城关镇 is assigned to the reader on duty at 清河县人民医院 (``specialist``), never to the one on
duty at the city hospital (``specialist_city``), and its WebSocket copy says ``for_you`` to that reader only;
with nobody on duty it is ``unassigned``; escalation goes to level 1 (the reading centre, plus whoever is on
duty now) and level 2 (flagged ``to_admin``: the hospital's facility_admin receives it, without the patient).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from gateway.identity.seed import demo_account
from tests.conftest import auth
from tests.ecg.ecg_service_support import (
    clear_roster,
    csv_bytes,
    go_on_duty,
    upload,
    user_id_of,
    ventricular_tachycardia,
)
from tests.ecg.test_alerts import next_of, snapshot, ws_url


def iso(t: datetime) -> str:
    return t.isoformat()


def fac_of(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["fac"])


@pytest.fixture(scope="module", autouse=True)
def empty_roster(stack, platform):  # type: ignore[no-untyped-def]
    """Every test here starts from (and leaves) an empty roster."""
    clear_roster(stack.database_url)
    yield
    clear_roster(stack.database_url)


# -- the roster API -------------------------------------------------------------------------------------


@pytest.fixture
def fresh_roster(stack):  # type: ignore[no-untyped-def]
    clear_roster(stack.database_url)


def test_a_specialist_goes_on_duty_with_valid_times(platform, login, fresh_roster) -> None:
    gw, token = platform.gateway_url, login("specialist")
    me, now = user_id_of(token), datetime.now(UTC)
    bad: list[dict[str, Any]] = [
        {"hours": 0},
        {"hours": 25},  # longer than ECG_DUTY_MAX_SHIFT_HOURS
        {"starts_at": iso(now + timedelta(hours=2)), "ends_at": iso(now + timedelta(hours=1))},
        {"starts_at": iso(now - timedelta(hours=3)), "ends_at": iso(now - timedelta(hours=1))},  # over already
        {"starts_at": iso(now + timedelta(days=120)), "hours": 2},  # too far ahead
        {"hours": 2, "ends_at": iso(now + timedelta(hours=2))},  # two ends
        {"starts_at": "2030-01-01T08:00:00", "hours": 2},  # no time zone
        {"hours": 2, "facility_id": str(uuid.uuid4())},  # the facility is the caller's, never chosen
    ]
    for body in bad:
        r = httpx.post(f"{gw}/api/ecg/duty", json=body, headers=auth(token))
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"] == "invalid", r.text

    r = go_on_duty(gw, token, hours=2)
    assert r.status_code == 201, r.text
    shift = r.json()
    assert shift["user_id"] == me == shift["created_by"] and shift["facility_id"] == fac_of(token)
    assert shift["display_name"] == demo_account("specialist").display_name
    length = datetime.fromisoformat(shift["ends_at"]) - datetime.fromisoformat(shift["starts_at"])
    assert length == timedelta(hours=2)

    overlap = go_on_duty(gw, token, starts_at=iso(now + timedelta(hours=1)), hours=3)
    assert overlap.status_code == 409 and overlap.json()["error"] == "conflict", overlap.text
    later = go_on_duty(gw, token, starts_at=iso(now + timedelta(hours=3)), hours=4)
    assert later.status_code == 201, later.text

    # only themselves; township doctors and analysts keep no roster here
    city = user_id_of(login("specialist_city"))
    assert go_on_duty(gw, token, user_id=city).status_code == 403
    assert go_on_duty(gw, login("doctor_a")).status_code == 403
    assert httpx.get(f"{gw}/api/ecg/duty", headers=auth(login("analyst"))).status_code == 403

    # from this test's start: shifts that earlier tests ended (within the default 12 h look-back) stay out
    listed = httpx.get(f"{gw}/api/ecg/duty", params={"user_id": me, "from": iso(now)}, headers=auth(token)).json()[
        "items"
    ]
    assert [s["id"] for s in listed] == [shift["id"], later.json()["id"]]
    on_duty = httpx.get(f"{gw}/api/ecg/duty/now", headers=auth(token)).json()
    assert [s["id"] for s in on_duty["items"]] == [shift["id"]]
    # the townships it reads for see who is on duty for them; the city hospital does not
    for user in ("doctor_a", "doctor_b"):
        theirs = httpx.get(f"{platform.service_url('ecg')}/api/ecg/duty/now", headers=auth(login(user))).json()
        assert shift["id"] in {s["id"] for s in theirs["items"]} and fac_of(token) in theirs["facility_ids"]
        assert httpx.get(f"{gw}/api/ecg/duty", headers=auth(login(user))).json()["items"] == []
    city_now = httpx.get(f"{gw}/api/ecg/duty/now", headers=auth(login("specialist_city"))).json()
    assert shift["id"] not in {s["id"] for s in city_now["items"]}


def test_taking_shifts_off_the_roster(platform, login, fresh_roster) -> None:
    gw, token = platform.gateway_url, login("specialist")
    now = datetime.now(UTC)
    running = go_on_duty(gw, token, hours=1).json()
    future = go_on_duty(gw, token, starts_at=iso(now + timedelta(days=2)), hours=8).json()
    # other facilities cannot see it: exactly like a missing shift
    for user in ("doctor_a", "specialist_city"):
        for base in (gw, platform.service_url("ecg")):
            r = httpx.delete(f"{base}/api/ecg/duty/{running['id']}", headers=auth(login(user)))
            assert r.status_code == 404, r.text
            missing = httpx.delete(f"{base}/api/ecg/duty/{uuid.uuid4()}", headers=auth(login(user)))
            assert missing.json() == r.json()

    assert httpx.delete(f"{gw}/api/ecg/duty/{future['id']}", headers=auth(token)).status_code == 204
    assert httpx.delete(f"{gw}/api/ecg/duty/{running['id']}", headers=auth(token)).status_code == 204
    listed = {s["id"]: s for s in httpx.get(f"{gw}/api/ecg/duty", headers=auth(token)).json()["items"]}
    assert future["id"] not in listed  # a future shift is removed
    ended = listed[running["id"]]  # a running one ends now and stays on the record
    assert datetime.fromisoformat(ended["ends_at"]) <= datetime.now(UTC)
    assert httpx.get(f"{gw}/api/ecg/duty/now", headers=auth(token)).json()["items"] == []
    again = httpx.delete(f"{gw}/api/ecg/duty/{running['id']}", headers=auth(token))
    assert again.status_code == 409, again.text


def test_the_facility_admin_schedules_a_specialist(platform, login, fresh_roster) -> None:
    gw, admin = platform.gateway_url, login("hospital_admin")
    specialist = user_id_of(login("specialist"))
    start = datetime.now(UTC) + timedelta(days=3)
    r = go_on_duty(gw, admin, user_id=specialist, starts_at=iso(start), hours=8)
    assert r.status_code == 201, r.text
    shift = r.json()
    assert shift["user_id"] == specialist and shift["created_by"] == user_id_of(admin)
    assert shift["display_name"] == demo_account("specialist").display_name
    assert shift["facility_id"] == fac_of(admin)
    # only specialists of the admin's own facility (doctor_a's township lies in the admin's subtree)
    for other in (user_id_of(login("doctor_a")), user_id_of(login("specialist_city")), str(uuid.uuid4())):
        refused = go_on_duty(gw, admin, user_id=other, starts_at=iso(start), hours=8)
        assert refused.status_code == 422, refused.text
    assert go_on_duty(gw, admin).status_code == 403  # the admin is no reader
    overlap = go_on_duty(gw, admin, user_id=specialist, starts_at=iso(start + timedelta(hours=4)), hours=8)
    assert overlap.status_code == 409
    window = {"from": iso(start - timedelta(hours=1)), "to": iso(start + timedelta(days=1))}
    listed = httpx.get(f"{gw}/api/ecg/duty", params=window, headers=auth(admin)).json()["items"]
    assert shift["id"] in {s["id"] for s in listed}
    assert httpx.delete(f"{gw}/api/ecg/duty/{shift['id']}", headers=auth(admin)).status_code == 204


async def test_row_level_security_hides_the_roster(db, platform, login, fresh_roster) -> None:
    """The roster and the learned reading-centre mapping answer nothing to another facility's principal."""
    from common.auth import Principal

    token = login("specialist")
    shift = go_on_duty(platform.gateway_url, token, starts_at=iso(datetime.now(UTC) + timedelta(days=5)),
                       hours=1).json()
    probe = Principal(user_id=uuid.uuid4(), username="probe", roles=frozenset({"specialist"}),
                      facility_id=uuid.uuid4())
    async with db.transaction(probe) as conn:
        assert await conn.fetchval("SELECT count(*) FROM ecg.duty_shifts WHERE id = $1", uuid.UUID(shift["id"])) == 0
        assert await conn.fetchval("SELECT count(*) FROM ecg.reading_centres") == 0
        changed = await conn.execute("UPDATE ecg.duty_shifts SET ends_at = now() + interval '1 day'")
        assert changed == "UPDATE 0"


# -- alerts and the roster ------------------------------------------------------------------------------


def _vt(platform, token: str) -> str:  # type: ignore[no-untyped-def]
    r = upload(platform.gateway_url, token, [("vt.csv", csv_bytes(ventricular_tachycardia()))], priority="stat")
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture(scope="module")
def assigned(platform, login, celery_worker, stack) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A VT of 城关镇 raised while ``specialist`` (清河县人民医院) and ``specialist_city`` are on duty, with the
    reader (through the gateway) and doctor_a (directly) listening."""
    clear_roster(stack.database_url)
    reader_token, doctor_token = login("specialist"), login("doctor_a")
    assert go_on_duty(platform.gateway_url, reader_token).status_code == 201
    assert go_on_duty(platform.gateway_url, login("specialist_city")).status_code == 201
    with connect(f"{ws_url(platform.gateway_url)}?access_token={reader_token}", open_timeout=10) as reader, \
            connect(ws_url(platform.service_url("ecg")), subprotocols=["bearer", doctor_token],
                    open_timeout=10) as doctor:
        snapshot(reader), snapshot(doctor)
        rid = _vt(platform, doctor_token)
        to_reader, to_doctor = next_of(reader, "alert", rid), next_of(doctor, "alert", rid)
    return {"id": rid, "reader": to_reader, "doctor": to_doctor, "alert_id": to_reader["alert"]["id"]}


def test_the_alert_is_assigned_to_the_reader_on_duty(platform, login, assigned) -> None:
    specialist = user_id_of(login("specialist"))
    mine, theirs = assigned["reader"], assigned["doctor"]
    assert mine["for_you"] is True and mine["alert"]["for_you"] is True
    assert mine["alert"]["assigned_to"] == [specialist]  # not specialist_city, on duty at the city hospital
    assert mine["alert"]["assigned_names"] == [demo_account("specialist").display_name]
    assert mine["alert"]["unassigned"] is False and mine["alert"]["to_admin"] is False
    assert theirs["for_you"] is False and theirs["alert"]["for_you"] is False
    assert theirs["alert"]["assigned_to"] == [specialist]
    for user, expected in (("specialist", True), ("doctor_a", False)):
        listed = httpx.get(f"{platform.gateway_url}/api/ecg/alerts", headers=auth(login(user))).json()["items"]
        assert [a["for_you"] for a in listed if a["id"] == assigned["alert_id"]] == [expected]


async def test_the_event_names_the_assignee(db, login, assigned) -> None:
    from common.auth import system_principal

    async with db.transaction(system_principal()) as conn:
        payload = await conn.fetchval(
            "SELECT payload FROM ecg.outbox WHERE subject_id = $1 AND event_type = 'ecg.critical_value'",
            assigned["id"],
        )
    assert payload["assigned_to"] == [user_id_of(login("specialist"))] and payload["unassigned"] is False


def test_escalation_levels(platform, login, celery_client, assigned) -> None:
    gw, rid = platform.gateway_url, assigned["id"]
    admin = login("hospital_admin")
    # the facility_admin (no clinical role) sees only what was flagged to them: nothing yet
    assert assigned["alert_id"] not in {a["id"] for a in httpx.get(
        f"{gw}/api/ecg/alerts", headers=auth(admin)).json()["items"]}
    with connect(f"{ws_url(gw)}?access_token={login('specialist')}", open_timeout=10) as reader, \
            connect(f"{ws_url(gw)}?access_token={admin}", open_timeout=10) as admin_ws:
        snapshot(reader)
        assert assigned["alert_id"] not in {a["id"] for a in snapshot(admin_ws)}
        result = celery_client.send_task("ecg.escalate_alerts", kwargs={"after_minutes": 0}).get(timeout=60)
        assert assigned["alert_id"] in result["escalated"]
        first = next_of(reader, "escalation", rid, timeout=20)
        assert first["level"] == 1 and first["to_admin"] is False and first["for_you"] is True
        celery_client.send_task("ecg.escalate_alerts", kwargs={"after_minutes": 0}).get(timeout=60)
        second = next_of(reader, "escalation", rid, timeout=20)
        assert second["level"] == 2 and second["to_admin"] is True and second["alert"]["to_admin"] is True
        flagged = next_of(admin_ws, "escalation", rid, timeout=20)  # level 1 never reached the admin
    assert flagged["level"] == 2 and flagged["to_admin"] is True and flagged["for_you"] is False
    assert flagged["alert"]["patient_id"] is None and flagged["alert"]["acknowledge_note"] is None
    listed = httpx.get(f"{gw}/api/ecg/alerts", headers=auth(admin)).json()["items"]
    assert [a["escalation_level"] for a in listed if a["id"] == assigned["alert_id"]] == [2]
    # the admin can see it but not acknowledge it
    ack = httpx.post(f"{gw}/api/ecg/alerts/{assigned['alert_id']}/acknowledge", headers=auth(admin))
    assert ack.status_code == 403


async def test_escalation_events_carry_the_level(db, assigned) -> None:
    from common.auth import system_principal

    async with db.transaction(system_principal()) as conn:
        rows = await conn.fetch(
            "SELECT payload FROM ecg.outbox WHERE subject_id = $1 AND event_type = 'ecg.critical_value_escalated'"
            " ORDER BY occurred_at", assigned["id"],
        )
    assert [(r["payload"]["level"], r["payload"]["to_admin"]) for r in rows] == [(1, False), (2, True)]


def test_with_nobody_on_duty_the_alert_is_unassigned(platform, login, celery_worker, celery_client, stack,
                                                     assigned) -> None:
    gw = platform.gateway_url
    clear_roster(stack.database_url)
    reader_token = login("specialist")
    with connect(f"{ws_url(gw)}?access_token={reader_token}", open_timeout=10) as reader:
        snapshot(reader)
        rid = _vt(platform, login("doctor_a"))
        pushed = next_of(reader, "alert", rid)
        alert = pushed["alert"]
        assert alert["unassigned"] is True and alert["assigned_to"] == [] and pushed["for_you"] is False
        # a reader goes on duty; the escalation re-notifies the centre and assigns them too
        assert go_on_duty(gw, reader_token).status_code == 201
        celery_client.send_task("ecg.escalate_alerts", kwargs={"after_minutes": 0}).get(timeout=60)
        escalated = next_of(reader, "escalation", rid, timeout=20)
    assert escalated["level"] == 1 and escalated["for_you"] is True
    assert escalated["alert"]["assigned_to"] == [user_id_of(reader_token)]
    assert escalated["alert"]["unassigned"] is False
    for alert_id in (alert["id"], assigned["alert_id"]):  # leave nothing open for the next modules
        r = httpx.post(f"{gw}/api/ecg/alerts/{alert_id}/acknowledge", headers=auth(reader_token))
        assert r.status_code == 200, r.text
