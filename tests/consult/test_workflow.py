"""The consult's life through the gateway: draft -> consent -> submit -> accept -> sessions -> opinion -> close;
illegal transitions (409 with the current state), decline needs a reason, cancel."""

from __future__ import annotations

import httpx

from tests.conftest import auth
from tests.consult.consult_support import API, CITY, COUNTY, draft, econsent, get, in_db, post, submitted, transitions


def test_whole_life(platform, stack, login) -> None:
    from common.auth import system_principal

    base = platform.gateway_url
    doctor, specialist = login("doctor_a"), login("specialist_city")
    c = draft(base, doctor, target=CITY)
    assert c["status"] == "draft" and c["requester_name"]
    # a draft is the requesting side's: the target side (市一院) does not see it yet
    assert get(base, specialist, f"/consults/{c['id']}").status_code == 404
    r = httpx.patch(f"{base}{API}/consults/{c['id']}", json={"urgency": "emergency"}, headers=auth(doctor))
    assert r.status_code == 200 and r.json()["urgency"] == "emergency"

    refused = post(base, doctor, f"/consults/{c['id']}/submit")
    assert refused.status_code == 409 and refused.json()["error"] == "consent_required"
    assert econsent(base, doctor, c["id"]).status_code == 201
    sub = post(base, doctor, f"/consults/{c['id']}/submit")
    assert sub.status_code == 200, sub.text
    assert sub.json()["status"] == "submitted" and sub.json()["respond_by"] and sub.json()["opinion_by"]

    inbox = get(base, specialist, "/consults", box="incoming").json()["items"]
    assert c["id"] in [i["id"] for i in inbox]
    out = get(base, doctor, "/consults", box="outgoing")
    assert out.status_code == 200, out.text
    assert c["id"] in [i["id"] for i in out.json()["items"]]
    theirs = get(base, doctor, "/consults", box="incoming")
    assert theirs.status_code == 200, theirs.text
    assert c["id"] not in [i["id"] for i in theirs.json()["items"]]

    acc = post(base, specialist, f"/consults/{c['id']}/accept")
    assert acc.status_code == 200, acc.text
    assert acc.json()["status"] == "accepted" and acc.json()["consultant_name"] == "周主任（市一院）"

    s = post(base, doctor, f"/consults/{c['id']}/sessions")
    assert s.status_code == 201, s.text
    sid = s.json()["session_id"]
    assert {p["role"] for p in s.json()["participants"]} == {"requester", "consultant"}
    assert get(base, doctor, f"/consults/{c['id']}").json()["consult"]["status"] == "in_session"
    again = post(base, specialist, f"/consults/{c['id']}/sessions")
    assert again.status_code == 409
    ended = post(base, specialist, f"/sessions/{sid}/end")
    assert ended.status_code == 200 and ended.json()["ended"] is True
    assert get(base, doctor, f"/consults/{c['id']}").json()["consult"]["status"] == "accepted"

    # the opinion states through service.transition (the opinion module's own API calls the same door)
    transitions(stack.database_url, c["id"], [(specialist, "write_opinion"), (specialist, "sign"),
                                              (doctor, "acknowledge")])
    closed = post(base, doctor, f"/consults/{c['id']}/close")
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["closed_at"]

    d = get(base, doctor, f"/consults/{c['id']}").json()
    assert [h["action"] for h in d["history"]] == ["submit", "accept", "start_session", "end_session",
                                                   "write_opinion", "sign", "acknowledge", "close"]
    assert d["consent"]["recorded"] is True and d["allowed_actions"] == []
    async def outbox(db):
        async with db.transaction(system_principal()) as conn:
            return [r["event_type"] for r in await conn.fetch(
                "SELECT event_type FROM consult.outbox WHERE subject_id = $1 ORDER BY occurred_at", c["id"])]

    events = in_db(stack.database_url, outbox)
    assert events == ["consult.requested", "consult.accepted", "consult.session_started", "consult.session_ended",
                      "consult.opinion_written", "consult.opinion_signed", "consult.opinion_acknowledged",
                      "consult.closed"]


def test_illegal_transition_answers_409_with_the_state(platform, login) -> None:
    base = platform.gateway_url
    doctor = login("doctor_a")
    c = submitted(base, doctor)
    twice = post(base, doctor, f"/consults/{c['id']}/submit")
    assert twice.status_code == 409 and "submitted" in twice.json()["detail"]
    early = post(base, doctor, f"/consults/{c['id']}/close")
    assert early.status_code == 409 and "submitted" in early.json()["detail"]
    # the requesting side may not accept its own consult
    own = post(base, doctor, f"/consults/{c['id']}/accept")
    assert own.status_code == 403
    edit = httpx.patch(f"{base}{API}/consults/{c['id']}", json={"reason": "x"}, headers=auth(doctor))
    assert edit.status_code == 409


def test_decline_needs_a_reason(platform, login) -> None:
    base = platform.gateway_url
    doctor, specialist = login("doctor_a"), login("specialist")
    c = submitted(base, doctor)
    assert post(base, specialist, f"/consults/{c['id']}/decline", {}).status_code == 422
    assert post(base, specialist, f"/consults/{c['id']}/decline", {"reason": " "}).status_code == 422
    r = post(base, specialist, f"/consults/{c['id']}/decline", {"reason": "本院无该专科"})
    assert r.status_code == 200 and r.json()["status"] == "declined"
    assert get(base, doctor, f"/consults/{c['id']}").json()["consult"]["decline_reason"] == "本院无该专科"
    assert post(base, specialist, f"/consults/{c['id']}/accept").status_code == 409


def test_cancel_with_reason_and_invitation_limits(platform, login) -> None:
    base = platform.gateway_url
    doctor = login("doctor_a")
    c = submitted(base, doctor, target=COUNTY)
    # invite a colleague of the requesting side (tech_a of 城关镇); an outsider is refused
    from tests.ecg.ecg_service_support import user_id_of

    assert post(base, doctor, f"/consults/{c['id']}/participants",
                {"user_id": user_id_of(login("tech_a"))}).status_code == 204
    assert post(base, doctor, f"/consults/{c['id']}/participants",
                {"user_id": user_id_of(login("specialist_city"))}).status_code == 422
    # the invitee sees the consult
    assert get(base, login("tech_a"), f"/consults/{c['id']}").status_code == 200
    assert post(base, doctor, f"/consults/{c['id']}/cancel", {}).status_code == 422
    r = post(base, doctor, f"/consults/{c['id']}/cancel", {"reason": "患者已转院"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
