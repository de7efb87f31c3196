"""Reassign through the gateway: the new consultant gains read access to exactly the attached items (imaging
and ECG grants pushed to the owning services), the previous one loses it, and the previous one's chat socket
is told it may no longer post.

The consults ask 市第一人民医院 (the city hospital): the county hospital reads 城关镇's items by standing policy
anyway (it is their reading centre), so only at the city hospital do the grants decide. The demo region has
one specialist there; the second is made through the admin API (the demo seed stays as it is: the seed's own
test counts its accounts).
"""

from __future__ import annotations

import httpx
from websockets.sync.client import connect

from tests.conftest import auth
from tests.consult.consult_support import CITY, draft, ecg_recording, econsent, get, imaging_study, post
from tests.consult.test_chat import next_of, ws_url
from tests.consult.test_permissions import _ecg_status, _study_status
from tests.gateway.identity_support import make_user


def test_reassign_moves_the_grants(platform, login) -> None:
    base = platform.gateway_url
    doctor, first = login("doctor_a"), login("specialist_city")
    second_user = make_user(base, login, roles=["specialist"], facility_code="QH-CITY1")
    second = login(second_user["username"], second_user["password"])
    study, rid = imaging_study(base, doctor), ecg_recording(base, doctor)
    c = draft(base, doctor, target=CITY)
    for kind, ref in (("imaging_study", study), ("ecg_recording", rid)):
        assert post(base, doctor, f"/consults/{c['id']}/attachments", {"kind": kind, "ref": ref}).status_code == 201
    assert econsent(base, doctor, c["id"]).status_code == 201
    assert post(base, doctor, f"/consults/{c['id']}/submit").status_code == 200
    assert post(base, first, f"/consults/{c['id']}/accept").status_code == 200
    assert (_study_status(base, first, study), _ecg_status(base, first, rid)) == (200, 200)
    assert (_study_status(base, second, study), _ecg_status(base, second, rid)) == (404, 404)

    # only the target side (or the consultant) reassigns; a requester cannot
    refused = post(base, doctor, f"/consults/{c['id']}/reassign",
                   {"consultant_id": second_user["id"], "reason": "门诊冲突"})
    assert refused.status_code == 403
    with connect(f"{ws_url(base, c['id'])}?access_token={first}", open_timeout=10) as ws:
        assert next_of(ws, "ready")["can_post"] is True
        r = post(base, first, f"/consults/{c['id']}/reassign",
                 {"consultant_id": second_user["id"], "reason": "门诊冲突"})
        assert r.status_code == 200, r.text
        assert r.json()["consultant_id"] == second_user["id"] and r.json()["status"] == "accepted"
        # still a specialist of the target facility: may read the chat, no longer post in it
        assert next_of(ws, "ready")["can_post"] is False

    # the new consultant reads exactly the attached items; the previous one no longer does
    assert (_study_status(base, second, study), _ecg_status(base, second, rid)) == (200, 200)
    assert (_study_status(base, first, study), _ecg_status(base, first, rid)) == (404, 404)
    detail = get(base, doctor, f"/consults/{c['id']}").json()
    by_grantee: dict[str, list[str]] = {}
    for g in detail["grants"]:
        by_grantee.setdefault(g["grantee_user_id"], []).append(g["status"])
    assert sorted(by_grantee[second_user["id"]]) == ["active", "active"], detail["grants"]
    assert sorted(s for u, sts in by_grantee.items() if u != second_user["id"] for s in sts) == ["revoked", "revoked"]
    roles = {p["user_id"]: p["role"] for p in detail["participants"]}
    assert roles.get(second_user["id"]) == "consultant" and list(roles.values()).count("consultant") == 1
    assert "reassign" in [h["action"] for h in detail["history"]]

    # the new consultant answers; the previous one may not write the opinion any more
    assert httpx.put(f"{base}/api/consult/consults/{c['id']}/opinion", headers=auth(first),
                     json={"diagnosis": "x"}).status_code == 403
