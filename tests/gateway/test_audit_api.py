"""Audit review through /api/audit: search and paging, a facility admin's scope, verification, FHIR export."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle

from gateway.identity.seed import COUNTY_HOSPITAL, demo_account
from tests.conftest import Platform
from tests.gateway.identity_support import bearer, fid, password_login


@pytest.fixture
def audit_get(platform: Platform, login: Callable[[str], str]) -> Callable[..., httpx.Response]:
    def get(path: str, as_user: str = "admin", **params: Any) -> httpx.Response:
        return httpx.get(
            f"{platform.gateway_url}/api/audit{path}", headers=bearer(login(as_user)), params=params, timeout=60
        )

    return get


def test_search_by_actor_action_outcome_and_time(platform: Platform, audit_get: Callable[..., httpx.Response]) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    password_login(platform.gateway_url, "tech_a")
    password_login(platform.gateway_url, "tech_a", "Wrong-pass-3")
    password_login(platform.gateway_url, "tech_a")
    tech_a = str(demo_account("tech_a").id)
    r = audit_get("/events", actor_id=tech_a, action="auth.login", since=since)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["action"], i["outcome"]) for i in items] == [
        ("auth.login", "success"),
        ("auth.login", "failure"),
        ("auth.login", "success"),
    ]
    assert items[0]["seq"] > items[1]["seq"] > items[2]["seq"]
    assert all(len(i["hash"]) == 64 and i["source"] == "gateway" for i in items)
    failures = audit_get("/events", actor_id=tech_a, outcome="failure", since=since).json()["items"]
    assert len(failures) == 1 and failures[0]["detail"]["reason"] == "bad_password"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert audit_get("/events", since=future).json() == {"items": [], "next_before_seq": None}
    by_name = audit_get("/events", actor_name="tech_a", action="auth.", limit=2).json()
    assert len(by_name["items"]) == 2 and by_name["next_before_seq"] == by_name["items"][-1]["seq"]


def test_paging_with_before_seq(audit_get: Callable[..., httpx.Response]) -> None:
    first = audit_get("/events", limit=3).json()
    assert len(first["items"]) == 3 and first["next_before_seq"] is not None
    second = audit_get("/events", limit=3, before_seq=first["next_before_seq"]).json()
    assert second["items"][0]["seq"] < first["items"][-1]["seq"]
    seen = [i["seq"] for i in first["items"] + second["items"]]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 6


def test_bad_filters(audit_get: Callable[..., httpx.Response]) -> None:
    now = datetime.now(UTC)
    r = audit_get("/events", since=now.isoformat(), until=(now - timedelta(hours=1)).isoformat())
    assert r.status_code == 422
    assert audit_get("/events", since="2026-01-01T00:00:00").status_code == 422  # no zone
    assert audit_get("/events", outcome="maybe").status_code == 422
    assert audit_get("/events", limit=0).status_code == 422


def test_facility_admin_sees_their_subtree_only(platform: Platform, audit_get: Callable[..., httpx.Response]) -> None:
    password_login(platform.gateway_url, "doctor_a")
    password_login(platform.gateway_url, "specialist_city")
    rows = audit_get("/events", as_user="hospital_admin", action="auth.login", limit=500).json()["items"]
    facilities = {r["facility_id"] for r in rows}
    assert fid("QH-CG") in facilities
    assert fid("QH-CITY1") not in facilities and None not in facilities
    city = audit_get("/events", as_user="hospital_admin", facility_id=fid("QH-CITY1")).json()
    assert city["items"] == []
    assert audit_get("/events", as_user="doctor_a").status_code == 403


def test_verify_reports_an_intact_chain(audit_get: Callable[..., httpx.Response]) -> None:
    r = audit_get("/verify")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["ok"] is True and report["checked"] > 0 and report["first_bad_seq"] is None
    assert audit_get("/verify", as_user="hospital_admin").status_code == 403
    last = audit_get("/events", action="audit.verify", limit=1).json()["items"][0]
    assert last["detail"]["ok"] is True and last["actor_name"] == "admin"


def test_fhir_export_validates_and_is_audited(platform: Platform, audit_get: Callable[..., httpx.Response]) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    password_login(platform.gateway_url, "phd_b")
    password_login(platform.gateway_url, "phd_b", "Wrong-pass-4")
    password_login(platform.gateway_url, "phd_b")
    r = audit_get("/export", since=since, actor_name="phd_b")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate_json(r.content)  # strict FHIR validation of the whole Bundle
    assert bundle.type == "collection"
    events = [e.resource for e in bundle.entry or []]
    assert len(events) == 3
    success, failure = events[0], events[1]
    assert success.type.code == "110114" and success.subtype[0].code == "110122"
    assert success.action == "E" and success.outcome == "0" and failure.outcome == "4"
    assert success.agent[0].who.identifier.value == str(demo_account("phd_b").id)
    assert success.agent[0].role[0].coding[0].code == "public_health"
    assert success.agent[0].network.address == "127.0.0.1"
    assert success.source.observer.display == "telehealth-gateway"
    assert success.entity[0].what.identifier.system == "urn:telehealth:user"

    exported = audit_get("/events", action="audit.export", limit=1).json()["items"][0]
    assert exported["actor_name"] == "admin" and exported["detail"]["count"] == 3


def test_export_of_http_requests_maps_methods(
    platform: Platform, login: Callable[[str], str], audit_get: Callable[..., httpx.Response]
) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    token = login("hospital_admin")
    httpx.get(f"{platform.gateway_url}/api/admin/users/{demo_account('doctor_a').id}", headers=bearer(token))
    httpx.patch(
        f"{platform.gateway_url}/api/admin/facilities/{fid(COUNTY_HOSPITAL)}",
        headers=bearer(token),
        json={"name_en": "Qinghe County People's Hospital"},
    )

    def exported(action: str) -> list[Any]:
        # the per-request row is written just after the response leaves: give it a moment
        for _ in range(50):
            r = audit_get("/export", since=since, source="gateway", action=action, limit=5)
            found = [e.resource for e in Bundle.model_validate_json(r.content).entry or []]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no {action} row")

    read = exported("GET /api/admin/users/")
    assert read[0].action == "R" and read[0].type.code == "rest" and read[0].subtype[0].code == "read"
    updates = exported("PATCH /api/admin/facilities/")
    assert updates[0].action == "U" and updates[0].outcome == "0"


def test_export_pages_with_a_next_link(audit_get: Callable[..., httpx.Response]) -> None:
    r = audit_get("/export", limit=2)
    bundle = Bundle.model_validate_json(r.content)
    assert len(bundle.entry or []) == 2
    next_link = next(link.url for link in bundle.link or [] if link.relation == "next")
    assert "before_seq=" in next_link
