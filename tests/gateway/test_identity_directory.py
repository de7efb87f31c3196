"""GET /api/directory/facilities: the names of the caller's region's facilities, for any signed-in user;
no people in it, another region's facilities never in it, and every call audited."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from common.config import platform_settings
from gateway.identity.keys import ensure_keys, load_private_key
from gateway.identity.seed import DEMO_ACCOUNTS, DEMO_FACILITIES, REGION
from tests.conftest import Platform
from tests.gateway.identity_support import bearer, fid, password_login, unique

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


# Accounts with a second factor are left out: a second sign-in within the same 30 s TOTP window is refused
# as a replay, which would break the sign-in tests that follow. Their roles are covered by minted tokens.
PASSWORD_ONLY = [a.username for a in DEMO_ACCOUNTS if not a.totp_secret]


def _token(**claims: Any) -> str:
    """An access token signed with the gateway's key for a principal that needs no account (as a role
    or facility the demo accounts do not cover)."""
    s = platform_settings()
    now = int(time.time())
    body = {"iss": s.jwt_issuer, "aud": s.jwt_audience, "sub": str(uuid.uuid4()), "iat": now, "exp": now + 300,
            "jti": uuid.uuid4().hex, "typ": "access", "name": "directory-probe", "roles": ["township_doctor"],
            "fac": fid(REGION), "serves": [], "region": fid(REGION), **claims}
    return jwt.encode(body, load_private_key(ensure_keys(s.keys_dir)), algorithm="EdDSA")


def _assert_qinghe(items: list[dict[str, Any]]) -> None:
    assert all(set(f) == FIELDS for f in items)
    by_code = {f["code"]: f for f in items}
    for demo in DEMO_FACILITIES:
        got = by_code[demo.code]
        assert got["id"] == fid(demo.code) and got["kind"] == demo.kind and got["level"] == demo.level
        assert got["name_zh"] == demo.name_zh and got["name_en"] == demo.name_en
        assert got["parent_id"] == (fid(demo.parent_code) if demo.parent_code else None)
    assert [f["code"] for f in _roots(items)] == [REGION]
    assert [f["code"] for f in items] == sorted(f["code"] for f in items)


@pytest.mark.parametrize("username", PASSWORD_ONLY)
def test_every_demo_role_reads_its_region(platform: Platform, login: Callable[[str], str], username: str) -> None:
    _assert_qinghe(_directory(platform, login(username)))


@pytest.mark.parametrize("role", ["facility_admin", "platform_admin"])
def test_administrators_read_it_too(platform: Platform, role: str) -> None:
    _assert_qinghe(_directory(platform, _token(roles=[role])))


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


async def test_another_region_sees_only_its_own(platform: Platform, login: Callable[[str], str],
                                                admin_db: Any) -> None:
    code = unique("DIR").upper().replace("_", "-")
    region, hospital = uuid.uuid4(), uuid.uuid4()
    async with admin_db.transaction() as conn:
        await conn.execute(
            "INSERT INTO gateway.facilities (id, parent_id, kind, level, code, name_zh, name_en) VALUES"
            " ($1, NULL, 'region', 'county', $3, '邻县', 'Neighbour county'),"
            " ($2, $1, 'hospital', 'county', $4, '邻县人民医院', 'Neighbour County Hospital')",
            region, hospital, code, code + "-H",
        )
    expected = {str(region), str(hospital)}
    for claims in ({"region": str(region)}, {"region": None}):  # a token without its region: looked up
        items = await asyncio.to_thread(_directory, platform, _token(fac=str(hospital), roles=["specialist"],
                                                                     **claims))
        assert {f["id"] for f in items} == expected
        assert next(f for f in items if f["id"] == str(hospital))["name_zh"] == "邻县人民医院"
    qinghe = await asyncio.to_thread(_directory, platform, login("doctor_a"))
    assert not expected & {f["id"] for f in qinghe}


async def test_calls_are_audited(platform: Platform, login: Callable[[str], str], admin_db: Any) -> None:
    marker = uuid.uuid4().hex
    headers = {**bearer(login("analyst")), "X-Request-ID": marker}
    r = await asyncio.to_thread(httpx.get, platform.gateway_url + PATH, headers=headers)
    assert r.status_code == 200
    deadline = time.monotonic() + 15
    while True:  # the middleware writes the entry once the answer is on its way
        async with admin_db.transaction() as conn:
            rows = await conn.fetch(
                "SELECT source, action, actor_name, outcome, status_code FROM audit.events WHERE request_id = $1",
                marker,
            )
        if rows or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert [dict(r) for r in rows] == [{"source": "gateway", "action": f"GET {PATH}", "actor_name": "analyst",
                                        "outcome": "success", "status_code": 200}]
