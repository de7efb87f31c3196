"""Overdue detection: the escalation task's function, called with a clock, escalates each missed deadline once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from common.auth import system_principal
from tests.conftest import auth
from tests.consult.consult_support import get, in_db, submitted


def test_each_deadline_escalates_once(platform, stack, login) -> None:
    from services.consult import overdue
    from services.consult import repository as repo

    base = platform.gateway_url
    doctor = login("doctor_a")
    c = submitted(base, doctor, urgency="emergency")
    respond_by, opinion_by = datetime.fromisoformat(c["respond_by"]), datetime.fromisoformat(c["opinion_by"])
    assert timedelta(minutes=29) < respond_by - datetime.fromisoformat(c["submitted_at"]) <= timedelta(minutes=30)

    def escalate_at(at: datetime) -> Any:
        async def work(db: Any) -> Any:
            await overdue.escalate(db, now=at)
            async with db.transaction(system_principal()) as conn:
                row = await repo.consult(conn, UUID(c["id"]))
                events = [dict(r) for r in await conn.fetch(
                    "SELECT facility_id, payload FROM consult.outbox WHERE subject_id = $1"
                    " AND event_type = 'consult.overdue' ORDER BY occurred_at", c["id"])]
            return row, events

        return in_db(stack.database_url, work)

    row, events = escalate_at(respond_by - timedelta(seconds=5))
    assert row.escalation_level == 0 and not events
    row, events = escalate_at(respond_by + timedelta(minutes=1))
    assert row.escalation_level == 1 and row.escalated == ["respond"] and row.overdue_at is not None
    row, events = escalate_at(respond_by + timedelta(minutes=2))
    assert row.escalation_level == 1 and len(events) == 1
    row, events = escalate_at(opinion_by + timedelta(minutes=1))
    assert row.escalation_level == 2 and sorted(row.escalated) == ["opinion", "respond"]
    assert [e["payload"]["deadline"] for e in events] == ["respond", "opinion"]
    assert [e["payload"]["level"] for e in events] == [1, 2]
    assert all(str(e["facility_id"]) == c["target_facility_id"] for e in events)

    # the inbox shows it overdue, overdue ones first
    items = get(base, login("specialist"), "/consults", box="incoming").json()["items"]
    assert items[0]["overdue"] is True
    mine = next(i for i in items if i["id"] == c["id"])
    assert mine["overdue"] and mine["escalation_level"] == 2

    # it reaches people: the consulted hospital's specialists in their incoming box (whatever the filters),
    # its facility admin at /escalations — ids and deadlines, no patient; nobody else
    box = get(base, login("specialist"), "/consults", box="incoming", status="closed").json()
    assert box["items"] == [] or all(i["status"] == "closed" for i in box["items"])
    mine = next(e for e in box["escalations"] if e["consult_id"] == c["id"])
    assert (mine["deadline"], mine["escalation_level"], mine["urgency"]) == ("respond", 2, "emergency")
    assert datetime.fromisoformat(mine["due_at"]) == respond_by
    admin = get(base, login("hospital_admin"), "/escalations")
    assert admin.status_code == 200, admin.text
    assert c["id"] in [e["consult_id"] for e in admin.json()["items"]]
    assert "测试患者" not in admin.text and "patient" not in admin.text
    assert get(base, doctor, "/escalations").status_code == 403
    assert c["id"] not in [e["consult_id"] for e in get(base, login("specialist_city"), "/escalations").json()["items"]]
    assert get(base, doctor, "/consults", box="outgoing").json()["escalations"] == []

    # once answered, the respond escalation no longer calls for anyone
    assert httpx.post(f"{base}/api/consult/consults/{c['id']}/decline", headers=auth(login("specialist")),
                      json={"reason": "本院无此专科"}).status_code == 200
    assert c["id"] not in [e["consult_id"] for e in get(base, login("hospital_admin"), "/escalations").json()["items"]]
