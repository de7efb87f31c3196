"""A chat socket lives no longer than its user's access: a removed invitee's socket gets a last
``{"type": "closed", "reason": "access_ended"}`` and closes; when the consult ends (cancelled, declined, closed)
every socket of it gets ``closed`` with the status and closes. Through the gateway, over Redis."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conftest import Platform, auth
from tests.consult.consult_support import CITY, post, submitted
from tests.consult.flow_support import accepted_consult, api
from tests.consult.test_chat import next_of, ws_url
from tests.gateway.identity_support import make_user


def closed_code(ws: ClientConnection, timeout: float = 10) -> int | None:
    """The close code once the server closed the socket (messages before it are skipped)."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=timeout)
    return closed.value.rcvd.code if closed.value.rcvd else None


def still_open(ws: ClientConnection) -> None:
    ws.send(json.dumps({"type": "ping"}))
    assert next_of(ws, "pong") == {"type": "pong"}


def test_removed_invitee_is_disconnected(platform: Platform, login: Any) -> None:
    gw = platform.gateway_url
    doctor, consultant = login("doctor_a"), login("specialist_city")
    # a technician of the city hospital sees a consult of 城关镇 only while invited to it
    colleague = make_user(gw, login, roles=["technician"], facility_code="QH-CITY1")
    guest = login(colleague["username"], colleague["password"])
    consult = submitted(gw, doctor, target=CITY)["id"]
    assert post(gw, consultant, f"/consults/{consult}/accept").status_code == 200
    assert post(gw, consultant, f"/consults/{consult}/participants", {"user_id": colleague["id"]}).status_code == 204

    with connect(f"{ws_url(gw, consult)}?access_token={guest}", open_timeout=10) as g, \
            connect(f"{ws_url(gw, consult)}?access_token={doctor}", open_timeout=10) as d:
        assert next_of(g, "ready")["can_post"] is True and next_of(d, "ready")["can_post"] is True
        # only invitees are removed, and only by the two sides
        refused = httpx.delete(api(gw, f"/consults/{consult}/participants/{colleague['id']}"), headers=auth(guest))
        assert refused.status_code == 403
        requester = httpx.get(api(gw, f"/consults/{consult}"), headers=auth(doctor)).json()["consult"]["requester_id"]
        kept = httpx.delete(api(gw, f"/consults/{consult}/participants/{requester}"), headers=auth(consultant))
        assert kept.status_code == 409 and kept.json()["error"] == "not_an_invitee"

        r = httpx.delete(api(gw, f"/consults/{consult}/participants/{colleague['id']}"), headers=auth(consultant))
        assert r.status_code == 204, r.text
        last = next_of(g, "closed")
        assert last == {"type": "closed", "consult_id": consult, "reason": "access_ended"}
        assert closed_code(g) == 4003
        still_open(d)  # the requester keeps their socket

    assert httpx.delete(api(gw, f"/consults/{consult}/participants/{colleague['id']}"),
                        headers=auth(consultant)).status_code == 404
    with pytest.raises(InvalidStatus) as gone:  # and cannot come back
        connect(f"{ws_url(gw, consult)}?access_token={guest}", open_timeout=10)
    assert gone.value.response.status_code == 404


def test_ending_the_consult_closes_every_socket(platform: Platform, login: Any) -> None:
    gw = platform.gateway_url
    doctor, spec = login("doctor_a"), login("specialist")
    consult = str(accepted_consult(gw, doctor, spec)["id"])
    with connect(f"{ws_url(gw, consult)}?access_token={doctor}", open_timeout=10) as d, \
            connect(ws_url(gw, consult), subprotocols=["bearer", spec], open_timeout=10) as s:  # type: ignore[list-item]
        next_of(d, "ready"), next_of(s, "ready")
        d.send(json.dumps({"type": "message", "text": "患者家属要求转上级医院。"}))
        next_of(s, "message")
        r = httpx.post(api(gw, f"/consults/{consult}/cancel"), headers=auth(doctor), json={"reason": "转院"})
        assert r.status_code == 200, r.text
        for ws in (d, s):
            assert next_of(ws, "closed") == {"type": "closed", "consult_id": consult, "reason": "cancelled"}
            assert closed_code(ws) == 4001
    # the history stays readable
    page = httpx.get(api(gw, f"/consults/{consult}/messages"), headers=auth(spec)).json()
    assert [m["text"] for m in page["items"]] == ["患者家属要求转上级医院。"]
