"""Scheduling: specialists publish availability, the requester books a slot (once: 409 for the second,
also when two requests race), reschedule frees the old slot, iCalendar out, reminders once each."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta

import httpx
import icalendar
import pytest

from tests.conftest import auth
from tests.consult.consult_support import in_db, principal_of
from tests.consult.flow_support import accepted_consult, api, county_hospital_id, publish_window


def free_slot_ids(gw: str, token: str, consult_id: str) -> set[str]:
    r = httpx.get(api(gw, "/slots"), params={"consult_id": consult_id}, headers=auth(token))
    assert r.status_code == 200, r.text
    return {s["id"] for s in r.json()["items"]}


def book(gw: str, token: str, consult_id: str, slot_id: str) -> httpx.Response:
    return httpx.post(api(gw, f"/consults/{consult_id}/booking"), headers=auth(token), json={"slot_id": slot_id},
                      timeout=30)


def status_of(gw: str, token: str, consult_id: str) -> str:
    return str(httpx.get(api(gw, f"/consults/{consult_id}"), headers=auth(token)).json()["consult"]["status"])


def test_publish_list_and_withdraw(platform, login) -> None:
    gw, spec = platform.gateway_url, login("specialist")
    window = publish_window(gw, spec, start_in=timedelta(days=10, hours=2), slots=3, minutes=20)
    assert len(window["slots"]) == 3 and all(s["free"] for s in window["slots"])
    assert window["specialist_facility_id"] == county_hospital_id()
    starts = [datetime.fromisoformat(s["starts_at"]) for s in window["slots"]]
    assert starts[1] - starts[0] == timedelta(minutes=20)

    overlap = httpx.post(api(gw, "/availability"), headers=auth(spec), json={
        "starts_at": window["slots"][1]["starts_at"], "ends_at": window["ends_at"], "slot_minutes": 10})
    assert overlap.status_code == 409 and overlap.json()["error"] == "overlap"
    not_a_specialist = httpx.post(api(gw, "/availability"), headers=auth(login("doctor_a")), json={
        "starts_at": window["starts_at"], "ends_at": window["ends_at"], "slot_minutes": 20})
    assert not_a_specialist.status_code == 403
    naive = httpx.post(api(gw, "/availability"), headers=auth(spec), json={
        "starts_at": "2030-01-01T09:00:00", "ends_at": "2030-01-01T10:00:00", "slot_minutes": 20})
    assert naive.status_code == 422

    # the requesting side sees the hospital's free slots
    listed = httpx.get(api(gw, "/slots"), params={"facility_id": county_hospital_id()},
                       headers=auth(login("doctor_a"))).json()["items"]
    assert {s["id"] for s in window["slots"]} <= {s["id"] for s in listed}
    mine = httpx.get(api(gw, "/availability"), headers=auth(spec)).json()["items"]
    assert window["id"] in {w["id"] for w in mine}

    # another hospital's specialist cannot withdraw it (404 as if missing); its own specialist can
    assert httpx.delete(api(gw, f"/availability/{window['id']}"), headers=auth(login("specialist_city"))) \
        .status_code == 404
    assert httpx.delete(api(gw, f"/availability/{window['id']}"), headers=auth(spec)).status_code == 204
    assert httpx.delete(api(gw, f"/availability/{window['id']}"), headers=auth(spec)).status_code == 404


def test_book_once_and_reschedule_frees_the_slot(platform, login) -> None:
    gw, doctor, spec = platform.gateway_url, login("doctor_a"), login("specialist")
    window = publish_window(gw, spec, start_in=timedelta(days=11, hours=3), slots=2)
    first, second = (s["id"] for s in window["slots"])
    consult = accepted_consult(gw, doctor, spec)["id"]
    other = accepted_consult(gw, doctor, spec)["id"]
    assert {first, second} <= free_slot_ids(gw, doctor, consult)

    r = book(gw, doctor, consult, first)
    assert r.status_code == 201, r.text
    assert r.json()["slot_id"] == first and status_of(gw, doctor, consult) == "scheduled"
    taken = book(gw, doctor, other, first)
    assert taken.status_code == 409 and taken.json()["error"] == "slot_taken"
    assert status_of(gw, doctor, other) == "accepted"  # the refused booking left nothing behind
    assert first not in free_slot_ids(gw, doctor, other)
    assert book(gw, login("doctor_b"), consult, second).status_code == 404

    # reschedule: the old slot is free again and can be booked by the other consult
    moved = book(gw, doctor, consult, second)
    assert moved.status_code == 201, moved.text
    assert status_of(gw, doctor, consult) == "scheduled"
    assert httpx.get(api(gw, f"/consults/{consult}/booking"), headers=auth(spec)).json()["slot_id"] == second
    assert first in free_slot_ids(gw, doctor, other)
    assert book(gw, doctor, other, first).status_code == 201

    # a booked window cannot be withdrawn
    blocked = httpx.delete(api(gw, f"/availability/{window['id']}"), headers=auth(spec))
    assert blocked.status_code == 409 and blocked.json()["error"] == "slot_booked"

    # the consult's calendar: one event, the right time, no patient name, sequence 1 after one move
    ics = httpx.get(api(gw, f"/consults/{consult}/calendar.ics"), headers=auth(doctor))
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    events = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    assert len(events) == 1
    event = events[0]
    assert event.decoded("dtstart") == datetime.fromisoformat(window["slots"][1]["starts_at"])
    assert event.decoded("dtend") == datetime.fromisoformat(window["slots"][1]["ends_at"])
    assert str(event["dtstart"].params.get("TZID")) == "Asia/Shanghai"
    assert str(event["uid"]) == f"consult-{consult}@consult.telehealth"
    assert int(event["sequence"]) == 1
    assert "测试患者" not in ics.text and "心内科" in str(event["summary"])

    # both sides' own calendars carry it
    for token in (doctor, spec):
        cal = httpx.get(api(gw, "/calendar.ics"), headers=auth(token))
        assert cal.status_code == 200, cal.text
        uids = {str(e["uid"]) for e in icalendar.Calendar.from_ical(cal.content).walk("VEVENT")}
        assert {f"consult-{consult}@consult.telehealth", f"consult-{other}@consult.telehealth"} <= uids
    other_doctor = httpx.get(api(gw, "/calendar.ics"), headers=auth(login("doctor_b")))
    assert f"consult-{consult}" not in other_doctor.text
    assert httpx.get(api(gw, f"/consults/{consult}/calendar.ics"), headers=auth(login("doctor_b"))).status_code == 404


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_bookings_of_one_slot(platform, login, round_) -> None:
    """Two requests for the same slot at the same moment: exactly one wins, the other is a 409."""
    gw, doctor, spec = platform.gateway_url, login("doctor_a"), login("specialist")
    window = publish_window(gw, spec, start_in=timedelta(days=12 + round_, hours=4), slots=1)
    slot = window["slots"][0]["id"]
    consults = [accepted_consult(gw, doctor, spec)["id"] for _ in range(2)]
    barrier = threading.Barrier(2)
    answers: dict[str, httpx.Response] = {}

    def go(cid: str) -> None:
        with httpx.Client(timeout=30) as client:
            client.get(api(gw, "/capabilities"), headers=auth(doctor))  # connection open before the race
            barrier.wait()
            answers[cid] = client.post(api(gw, f"/consults/{cid}/booking"), headers=auth(doctor),
                                       json={"slot_id": slot})

    threads = [threading.Thread(target=go, args=(cid,)) for cid in consults]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in answers.values())
    assert codes == [201, 409], [r.text for r in answers.values()]
    winner = next(cid for cid, r in answers.items() if r.status_code == 201)
    loser = next(cid for cid, r in answers.items() if r.status_code == 409)
    assert answers[loser].json()["error"] == "slot_taken"
    assert status_of(gw, doctor, winner) == "scheduled" and status_of(gw, doctor, loser) == "accepted"


async def _reminders(admin_db, consult_id: str) -> list[str]:
    async with admin_db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT payload->>'lead' AS lead FROM consult.outbox WHERE event_type = 'consult.reminder'"
            " AND subject_id = $1 ORDER BY occurred_at", consult_id)
    return [r["lead"] for r in rows]


async def test_reminders_are_sent_once_each(platform, login, admin_db, celery_client) -> None:
    gw, doctor, spec = platform.gateway_url, login("doctor_a"), login("specialist")
    window = publish_window(gw, spec, start_in=timedelta(hours=23), slots=1)
    consult = accepted_consult(gw, doctor, spec)["id"]
    assert book(gw, doctor, consult, window["slots"][0]["id"]).status_code == 201
    starts = datetime.fromisoformat(window["slots"][0]["starts_at"])

    def run(now: datetime | None = None) -> dict[str, int]:
        args = [now.isoformat()] if now else []
        result: dict[str, int] = celery_client.send_task("consult.send_reminders", args=args).get(timeout=60)
        return result

    run()
    run()
    assert await _reminders(admin_db, consult) == ["24h"]
    soon = starts - timedelta(minutes=10)
    assert run(soon)["15m"] >= 1
    run(soon)
    assert await _reminders(admin_db, consult) == ["24h", "15m"]
    assert run(starts + timedelta(minutes=1)) == {"24h": 0, "15m": 0, "skipped": 0}

    # the payload names people by id only
    async with admin_db.pool.acquire() as conn:
        payload = await conn.fetchval(
            "SELECT payload FROM consult.outbox WHERE event_type = 'consult.reminder' AND subject_id = $1 LIMIT 1",
            consult)
    recipients = payload["recipients"]
    assert all(uuid.UUID(r) for r in recipients) and len(recipients) == 2


def test_cancelling_releases_the_booked_slot(platform, login, stack) -> None:
    """Cancel a scheduled consult: in the same transaction its booking is released and the slot is free
    again (another consult books it); its calendar event stays, marked CANCELLED."""
    gw, doctor, spec = platform.gateway_url, login("doctor_a"), login("specialist")
    window = publish_window(gw, spec, start_in=timedelta(days=15, hours=5), slots=1)
    slot = window["slots"][0]["id"]
    consult = accepted_consult(gw, doctor, spec)["id"]
    other = accepted_consult(gw, doctor, spec)["id"]
    assert book(gw, doctor, consult, slot).status_code == 201
    assert slot not in free_slot_ids(gw, doctor, other)

    r = httpx.post(api(gw, f"/consults/{consult}/cancel"), headers=auth(doctor), json={"reason": "患者已转院"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert slot in free_slot_ids(gw, doctor, other)
    assert httpx.get(api(gw, f"/consults/{consult}/booking"), headers=auth(doctor)).status_code == 404

    async def rows(db):  # type: ignore[no-untyped-def]
        async with db.pool.acquire() as conn:
            return (await conn.fetchrow("SELECT id, released_at, released_by, xmin::text AS tx FROM consult.bookings"
                                        " WHERE consult_id = $1", uuid.UUID(consult)),
                    await conn.fetchval("SELECT xmin::text FROM consult.consults WHERE id = $1", uuid.UUID(consult)),
                    await conn.fetchval("SELECT payload FROM consult.outbox WHERE subject_id = $1"
                                        " AND event_type = 'consult.cancelled'", consult))

    booking, cancel_tx, payload = in_db(stack.database_url, rows)
    assert booking["released_at"] is not None and str(booking["released_by"]) == user_of(doctor)
    assert booking["tx"] == cancel_tx  # written by the cancelling transaction itself
    assert payload["booking_released"] == str(booking["id"])

    # the calendars still carry the event, now CANCELLED (same UID, so clients drop it)
    ics = httpx.get(api(gw, f"/consults/{consult}/calendar.ics"), headers=auth(spec))
    assert ics.status_code == 200, ics.text
    events = icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    assert len(events) == 1 and str(events[0]["status"]) == "CANCELLED"
    mine = icalendar.Calendar.from_ical(httpx.get(api(gw, "/calendar.ics"), headers=auth(spec)).content)
    [event] = [e for e in mine.walk("VEVENT") if str(e["uid"]) == f"consult-{consult}@consult.telehealth"]
    assert str(event["status"]) == "CANCELLED"

    # the freed slot is bookable by another consult; cancelling an unscheduled consult changes no booking
    assert book(gw, doctor, other, slot).status_code == 201
    third = accepted_consult(gw, doctor, spec)["id"]
    assert httpx.post(api(gw, f"/consults/{third}/cancel"), headers=auth(doctor),
                      json={"reason": "不再需要"}).status_code == 200
    assert slot not in free_slot_ids(gw, doctor, other)


def user_of(token: str) -> str:
    return str(principal_of(token).user_id)
