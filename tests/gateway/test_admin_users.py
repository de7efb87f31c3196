"""User accounts through /api/admin: tenancy, grants, validation, passwords, unlock, TOTP, and the audit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pyotp
import pytest

from gateway.identity.seed import CITY_HOSPITAL, COUNTY_HOSPITAL, demo_account
from tests.conftest import Platform
from tests.gateway.identity_support import (
    STRONG_PASSWORD,
    bearer,
    fid,
    make_user,
    password_login,
    refresh,
    unique,
)


class Api:
    def __init__(self, base: str, token: str):
        self.base, self.headers = base, bearer(token)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.base}/api/admin{path}", headers=self.headers, json=body, params=params or None, timeout=15
        )


@pytest.fixture
def admin(platform: Platform, login: Callable[[str], str]) -> Api:
    return Api(platform.gateway_url, login("admin"))


@pytest.fixture
def hospital_admin(platform: Platform, login: Callable[[str], str]) -> Api:
    return Api(platform.gateway_url, login("hospital_admin"))


def _new(api: Api, facility_code: str = "QH-CG", roles: list[str] | None = None, **extra: Any) -> httpx.Response:
    body = {
        "username": unique("u"),
        "display_name": "新用户",
        "roles": ["technician"] if roles is None else roles,
        "facility_id": fid(facility_code),
        "password": STRONG_PASSWORD,
    }
    return api.call("POST", "/users", {**body, **extra})


def test_list_is_scoped_to_the_subtree(admin: Api, hospital_admin: Api) -> None:
    mine = hospital_admin.call("GET", "/users", limit=500).json()
    names = {u["username"] for u in mine["items"]}
    assert {"doctor_a", "doctor_b", "specialist", "hospital_admin"} <= names
    assert not names & {"specialist_city", "analyst", "admin"}
    assert mine["total"] == len(mine["items"])
    assert all("password_hash" not in u and "totp_secret" not in u for u in mine["items"])

    everyone = {u["username"] for u in admin.call("GET", "/users", limit=500).json()["items"]}
    assert {"specialist_city", "analyst", "admin"} <= everyone

    only_cg = admin.call("GET", "/users", facility_id=fid("QH-CG"), role="township_doctor").json()["items"]
    assert {u["username"] for u in only_cg} >= {"doctor_a"} and all(
        u["facility"]["id"] == fid("QH-CG") for u in only_cg
    )
    search = admin.call("GET", "/users", q="doctor_").json()["items"]
    assert {"doctor_a", "doctor_b"} <= {u["username"] for u in search}
    assert hospital_admin.call("GET", "/users", facility_id=fid(CITY_HOSPITAL)).status_code == 404
    assert admin.call("GET", "/users", role="wizard").status_code == 422


def test_facility_admin_cannot_touch_another_hospitals_users(hospital_admin: Api) -> None:
    city = str(demo_account("specialist_city").id)
    for method, path, body in (
        ("GET", f"/users/{city}", None),
        ("PATCH", f"/users/{city}", {"display_name": "x"}),
        ("POST", f"/users/{city}/deactivate", None),
        ("POST", f"/users/{city}/password", {"password": STRONG_PASSWORD}),
        ("POST", f"/users/{city}/unlock", None),
        ("POST", f"/users/{city}/totp", None),
    ):
        r = hospital_admin.call(method, path, body)
        assert r.status_code == 404, f"{method} {path}: {r.status_code} {r.text}"
        missing = hospital_admin.call(method, path.replace(city, str(uuid.uuid4())), body)
        assert missing.json()["error"] == r.json()["error"] == "not_found"
    assert _new(hospital_admin, CITY_HOSPITAL).status_code == 404
    mine = hospital_admin.call("PATCH", f"/users/{demo_account('tech_b').id}", {"facility_id": fid(CITY_HOSPITAL)})
    assert mine.status_code == 404  # cannot move a user out of the subtree either


def test_facility_admin_grants_only_what_they_may(hospital_admin: Api) -> None:
    for role in ("platform_admin", "bureau_analyst"):
        r = _new(hospital_admin, roles=[role])
        assert r.status_code == 403, r.text
    ok = _new(hospital_admin, "QH-WZ", roles=["township_doctor", "public_health"])
    assert ok.status_code == 201 and ok.json()["roles"] == ["public_health", "township_doctor"]
    assert ok.json()["totp"] is None and ok.json()["mfa_enrolled"] is False


def test_validation_and_duplicates(admin: Api) -> None:
    first = _new(admin)
    assert first.status_code == 201
    dup = admin.call(
        "POST",
        "/users",
        {
            "username": first.json()["username"].upper(),
            "display_name": "x",
            "roles": ["technician"],
            "facility_id": fid("QH-CG"),
            "password": STRONG_PASSWORD,
        },
    )
    assert dup.status_code == 409 and dup.json()["error"] == "conflict"
    for override, field in (
        ({"password": "short1A"}, "password"),
        ({"password": "alllowercaseletters"}, "password"),
        ({"username": "x"}, "username"),
        ({"username": "has space"}, "username"),
        ({"roles": []}, "roles"),
        ({"roles": ["wizard"]}, "roles"),
        ({"display_name": " "}, "display_name"),
        ({"shoe_size": 42}, "shoe_size"),
    ):
        r = _new(admin, **override)
        assert r.status_code == 422 and field in r.json()["detail"], (override, r.text)
    assert _new(admin, facility_id=str(uuid.uuid4())).status_code == 404
    target = first.json()["id"]
    assert admin.call("PATCH", f"/users/{target}", {"roles": None}).status_code == 422


def test_admin_roles_need_a_second_factor(platform: Platform, admin: Api) -> None:
    user = _new(admin, COUNTY_HOSPITAL, roles=["specialist"]).json()
    refused = admin.call("PATCH", f"/users/{user['id']}", {"roles": ["specialist", "facility_admin"]})
    assert refused.status_code == 422 and "totp" in refused.json()["detail"].lower()
    enrolment = admin.call("POST", f"/users/{user['id']}/totp")
    assert enrolment.status_code == 200 and enrolment.headers["cache-control"] == "no-store"
    uri = enrolment.json()["otpauth_uri"]
    assert uri.startswith("otpauth://totp/") and user["username"] in uri
    granted = admin.call("PATCH", f"/users/{user['id']}", {"roles": ["specialist", "facility_admin"]})
    assert granted.status_code == 200 and granted.json()["mfa_enrolled"] is True
    code = pyotp.parse_uri(uri).now()
    assert password_login(platform.gateway_url, user["username"], STRONG_PASSWORD).json()["error"] == "mfa_required"
    assert password_login(platform.gateway_url, user["username"], STRONG_PASSWORD, totp=code).status_code == 200
    # the secret is never shown again
    assert "secret" not in admin.call("GET", f"/users/{user['id']}").text


def test_reset_password_unlocks_and_ends_sessions(platform: Platform, admin: Api, login: Callable[[str], str]) -> None:
    base = platform.gateway_url
    user = make_user(base, login, roles=["technician"], facility_code="QH-LJ")
    session = password_login(base, user["username"], user["password"]).json()
    for _ in range(5):
        password_login(base, user["username"], "Wrong-pass-1")
    assert admin.call("GET", f"/users/{user['id']}").json()["locked_until"] is not None
    weak = admin.call("POST", f"/users/{user['id']}/password", {"password": "weak"})
    assert weak.status_code == 422
    new_password = "N3w-password!" + uuid.uuid4().hex[:4]
    r = admin.call("POST", f"/users/{user['id']}/password", {"password": new_password})
    assert r.status_code == 200 and r.json()["locked_until"] is None and r.json()["failed_attempts"] == 0
    assert refresh(base, session["refresh_token"]).status_code == 401
    assert password_login(base, user["username"], user["password"]).status_code == 401
    assert password_login(base, user["username"], new_password).status_code == 200


def test_unlock(platform: Platform, hospital_admin: Api, login: Callable[[str], str]) -> None:
    base = platform.gateway_url
    user = make_user(base, login, roles=["public_health"], facility_code="QH-WZ", as_user="hospital_admin")
    for _ in range(5):
        password_login(base, user["username"], "Wrong-pass-1")
    assert password_login(base, user["username"], user["password"]).status_code == 423
    r = hospital_admin.call("POST", f"/users/{user['id']}/unlock")
    assert r.status_code == 200 and r.json()["locked_until"] is None
    assert password_login(base, user["username"], user["password"]).status_code == 200


def test_update_deactivate_and_reactivate(platform: Platform, hospital_admin: Api) -> None:
    user = _new(hospital_admin, "QH-CG").json()
    moved = hospital_admin.call("PATCH", f"/users/{user['id']}", {"display_name": "改名", "facility_id": fid("QH-LJ")})
    assert moved.status_code == 200
    assert moved.json()["display_name"] == "改名" and moved.json()["facility"]["id"] == fid("QH-LJ")
    off = hospital_admin.call("POST", f"/users/{user['id']}/deactivate")
    assert off.status_code == 200 and off.json()["active"] is False
    assert password_login(platform.gateway_url, user["username"], STRONG_PASSWORD).status_code == 401
    on = hospital_admin.call("PATCH", f"/users/{user['id']}", {"active": True})
    assert on.status_code == 200 and on.json()["active"] is True
    assert password_login(platform.gateway_url, user["username"], STRONG_PASSWORD).status_code == 200
    inactive_only = hospital_admin.call("GET", "/users", active=False, limit=500).json()["items"]
    assert all(not u["active"] for u in inactive_only)


def test_no_self_harm(hospital_admin: Api) -> None:
    me = str(demo_account("hospital_admin").id)
    assert hospital_admin.call("POST", f"/users/{me}/deactivate").status_code == 403
    assert hospital_admin.call("PATCH", f"/users/{me}", {"roles": ["specialist"]}).status_code == 403
    assert hospital_admin.call("PATCH", f"/users/{me}", {"display_name": "吴管理员（县医院）"}).status_code == 200


async def test_every_admin_action_is_audited(admin: Api, admin_db: Any) -> None:
    user = _new(admin, "QH-CG").json()
    uid = user["id"]
    admin.call("PATCH", f"/users/{uid}", {"display_name": "审计"})
    admin.call("POST", f"/users/{uid}/password", {"password": "An0ther!pass"})
    admin.call("POST", f"/users/{uid}/unlock")
    admin.call("POST", f"/users/{uid}/totp")
    admin.call("POST", f"/users/{uid}/deactivate")
    async with admin_db.transaction() as conn:
        rows = await conn.fetch(
            "SELECT action, actor_name, source, detail::text AS detail FROM audit.events"
            " WHERE object_type = 'user' AND object_id = $1 ORDER BY seq",
            uid,
        )
    assert [r["action"] for r in rows] == [
        "admin.user.create",
        "admin.user.update",
        "admin.user.reset_password",
        "admin.user.unlock",
        "admin.user.enrol_totp",
        "admin.user.deactivate",
    ]
    assert {r["actor_name"] for r in rows} == {"admin"} and {r["source"] for r in rows} == {"gateway"}
    assert all("An0ther" not in r["detail"] and STRONG_PASSWORD not in r["detail"] for r in rows)
