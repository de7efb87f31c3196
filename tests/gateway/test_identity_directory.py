"""GET /api/directory/facilities: the names of the caller's region's facilities, for any signed-in user;
no people in it, another region's facilities never in it, and every call audited."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.identity.seed import DEMO_ACCOUNTS, DEMO_FACILITIES, REGION
from tests.conftest import Platform
from tests.gateway.identity_support import STRONG_PASSWORD, bearer, fid, password_login, unique

PATH = "/api/directory/facilities"
FIELDS = {"id", "parent_id", "kind", "level", "code", "name_zh", "name_en"}


def _directory(platform: Platform, token: str) -> list[dict[str, Any]]:
    r = httpx.get(platform.gateway_url + PATH, headers=bearer(token), timeout=15)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "private, max-age=300"
    return list(r.json())


def _roots(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Facilities whose parent is not in the list: a region's directory has exactly one, the region."""
    ids = {f["id"] for f in items}
    return [f for f in items if f["parent_id"] not in ids]


@pytest.mark.parametrize("username", [a.username for a in DEMO_ACCOUNTS])
def test_every_demo_role_reads_its_region(platform: Platform, login: Callable[[str], str], username: str) -> None:
    items = _directory(platform, login(username))
    assert all(set(f) == FIELDS for f in items)
    by_code = {f["code"]: f for f in items}
    for demo in DEMO_FACILITIES:
        got = by_code[demo.code]
        assert got["id"] == fid(demo.code) and got["kind"] == demo.kind and got["level"] == demo.level
        assert got["name_zh"] == demo.name_zh and got["name_en"] == demo.name_en
        assert got["parent_id"] == (fid(demo.parent_code) if demo.parent_code else None)
    assert [f["code"] for f in _roots(items)] == [REGION]
    assert [f["code"] for f in items] == sorted(f["code"] for f in items)


def test_no_people_in_it(platform: Platform, login: Callable[[str], str]) -> None:
    text = httpx.get(platform.gateway_url + PATH, headers=bearer(login("specialist"))).text
    for account in DEMO_ACCOUNTS:
        assert account.username not in text and account.display_name not in text


def test_needs_a_live_token(platform: Platform) -> None:
    assert httpx.get(platform.gateway_url + PATH).status_code == 401
    assert httpx.get(platform.gateway_url + PATH, headers=bearer("abc.def.ghi")).status_code == 401
    tokens = password_login(platform.gateway_url, "tech_b").json()
    logout = httpx.post(f"{platform.gateway_url}/auth/logout", headers=bearer(tokens["access_token"]),
                        json={"refresh_token": tokens["refresh_token"]})
    assert logout.status_code == 204
    revoked = httpx.get(platform.gateway_url + PATH, headers=bearer(tokens["access_token"]))
    assert revoked.status_code == 401


def test_another_region_sees_only_its_own(platform: Platform, login: Callable[[str], str]) -> None:
    admin = bearer(login("admin"))

    def create(**body: Any) -> dict[str, Any]:
        code = unique("DIR").upper().replace("_", "-")
        r = httpx.post(f"{platform.gateway_url}/api/admin/facilities", headers=admin,
                       json={"code": code, "name_zh": "邻县" + code[-4:], **body})
        assert r.status_code == 201, r.text
        return dict(r.json())

    region = create(kind="region", name_en="Neighbour county")
    hospital = create(kind="hospital", parent_id=region["id"], level="county")
    user = httpx.post(f"{platform.gateway_url}/api/admin/users", headers=admin, json={
        "username": unique("dir"), "display_name": "邻县医生", "facility_id": hospital["id"],
        "roles": ["specialist"], "password": STRONG_PASSWORD,
    })
    assert user.status_code == 201, user.text
    token = password_login(platform.gateway_url, user.json()["username"], STRONG_PASSWORD).json()["access_token"]
    items = _directory(platform, token)
    assert {f["id"] for f in items} == {region["id"], hospital["id"]}
    assert fid(REGION) not in {f["id"] for f in items}
    qinghe = _directory(platform, login("doctor_a"))
    assert region["id"] not in {f["id"] for f in qinghe}


async def test_calls_are_audited(platform: Platform, login: Callable[[str], str], admin_db: Any) -> None:
    marker = str(uuid.uuid4())
    r = httpx.get(platform.gateway_url + PATH, headers={**bearer(login("analyst")), "X-Request-ID": marker})
    assert r.status_code == 200
    async with admin_db.transaction() as conn:
        rows = await conn.fetch(
            "SELECT source, action, actor_name, outcome, status_code FROM audit.events WHERE request_id = $1",
            marker,
        )
    assert [dict(r) for r in rows] == [{"source": "gateway", "action": f"GET {PATH}", "actor_name": "analyst",
                                        "outcome": "success", "status_code": 200}]
