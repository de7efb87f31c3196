"""Refresh rotation and theft detection, logout, and tokens a service must refuse."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.config import platform_settings
from gateway.identity.keys import ensure_keys, load_private_key
from tests.conftest import Platform
from tests.gateway.identity_support import bearer, make_user, password_login, refresh

SERVICE_PATH = "/api/ecg/capabilities"  # any service route that needs a token


def _sign(claims: dict[str, Any], key: Ed25519PrivateKey | None = None, **headers: Any) -> str:
    key = key or load_private_key(ensure_keys(platform_settings().keys_dir))
    return jwt.encode(claims, key, algorithm="EdDSA", headers=headers or None)


def _claims(**override: Any) -> dict[str, Any]:
    s = platform_settings()
    now = int(time.time())
    base = {
        "iss": s.jwt_issuer,
        "aud": s.jwt_audience,
        "sub": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "name": "probe",
        "roles": ["township_doctor"],
        "fac": str(uuid.uuid4()),
        "serves": [],
        "region": None,
    }
    base.update(override)
    return base


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def user(platform: Platform, login: Callable[[str], str]) -> dict[str, Any]:
    return make_user(platform.gateway_url, login, roles=["township_doctor"], facility_code="QH-CG")


def test_refresh_rotates(platform: Platform, user: dict[str, Any]) -> None:
    base = platform.gateway_url
    first = password_login(base, user["username"], user["password"]).json()
    second = refresh(base, first["refresh_token"])
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert body["user"]["username"] == user["username"]
    third = refresh(base, body["refresh_token"])
    assert third.status_code == 200
    assert httpx.get(f"{base}/auth/me", headers=bearer(third.json()["access_token"])).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_family(platform: Platform, user: dict[str, Any]) -> None:
    base = platform.gateway_url
    stolen = password_login(base, user["username"], user["password"]).json()["refresh_token"]
    legit = refresh(base, stolen).json()["refresh_token"]  # the owner rotates
    replay = refresh(base, stolen)  # the thief replays the old one
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_grant"
    after = refresh(base, legit)  # the whole family is gone, the owner must sign in again
    assert after.status_code == 401
    # another session of the same user is untouched
    other = password_login(base, user["username"], user["password"]).json()["refresh_token"]
    assert refresh(base, other).status_code == 200


def test_bad_refresh_tokens(platform: Platform) -> None:
    r = refresh(platform.gateway_url, "not-a-token-" + uuid.uuid4().hex)
    assert r.status_code == 401 and r.json()["error"] == "invalid_grant"


async def test_expired_refresh_token_is_refused(platform: Platform, user: dict[str, Any], admin_db: Any) -> None:
    tokens = password_login(platform.gateway_url, user["username"], user["password"]).json()
    async with admin_db.transaction() as conn:
        await conn.execute(
            "UPDATE gateway.refresh_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1",
            uuid.UUID(user["id"]),
        )
    assert refresh(platform.gateway_url, tokens["refresh_token"]).status_code == 401


def test_logout_revokes_both_tokens(platform: Platform, user: dict[str, Any]) -> None:
    base = platform.gateway_url
    tokens = password_login(base, user["username"], user["password"]).json()
    access = tokens["access_token"]
    assert httpx.get(f"{base}/auth/me", headers=bearer(access)).status_code == 200
    r = httpx.post(f"{base}/auth/logout", headers=bearer(access), json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 204
    me = httpx.get(f"{base}/auth/me", headers=bearer(access))
    assert me.status_code == 401 and me.json()["error"] == "token_revoked"
    assert refresh(base, tokens["refresh_token"]).status_code == 401


def test_logout_with_only_a_refresh_token(platform: Platform, user: dict[str, Any]) -> None:
    base = platform.gateway_url
    tokens = password_login(base, user["username"], user["password"]).json()
    assert httpx.post(f"{base}/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code == 204
    assert refresh(base, tokens["refresh_token"]).status_code == 401
    nothing = httpx.post(f"{base}/auth/logout", json={})
    assert nothing.status_code == 401


def test_logout_ignores_another_users_refresh_token(
    platform: Platform, user: dict[str, Any], login: Callable[[str], str]
) -> None:
    base = platform.gateway_url
    victim = password_login(base, user["username"], user["password"]).json()
    r = httpx.post(
        f"{base}/auth/logout",
        headers=bearer(password_login(base, "tech_a").json()["access_token"]),
        json={"refresh_token": victim["refresh_token"]},
    )
    assert r.status_code == 204
    assert refresh(base, victim["refresh_token"]).status_code == 200


def test_deactivation_ends_sessions(platform: Platform, user: dict[str, Any], login: Callable[[str], str]) -> None:
    base = platform.gateway_url
    tokens = password_login(base, user["username"], user["password"]).json()
    r = httpx.post(f"{base}/api/admin/users/{user['id']}/deactivate", headers=bearer(login("admin")))
    assert r.status_code == 200 and r.json()["active"] is False
    assert refresh(base, tokens["refresh_token"]).status_code == 401
    assert password_login(base, user["username"], user["password"]).json()["error"] == "invalid_grant"


def _tampered(token: str) -> str:
    head, payload, sig = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["platform_admin"]
    return ".".join([head, _b64(orjson.dumps(claims)), sig])


def _alg_none(token: str) -> str:
    _, payload, _ = token.split(".")
    return ".".join([_b64(b'{"alg":"none","typ":"JWT"}'), payload, ""])


@pytest.mark.parametrize(
    "kind",
    ["tampered", "expired", "wrong_audience", "wrong_issuer", "alg_none", "foreign_key", "not_access", "garbage"],
)
def test_services_refuse_bad_tokens(platform: Platform, login: Callable[[str], str], kind: str) -> None:
    good = login("doctor_a")
    token = {
        "tampered": lambda: _tampered(good),
        "expired": lambda: _sign(_claims(iat=int(time.time()) - 3600, exp=int(time.time()) - 60)),
        "wrong_audience": lambda: _sign(_claims(aud="another-system")),
        "wrong_issuer": lambda: _sign(_claims(iss="https://evil.example")),
        "alg_none": lambda: _alg_none(good),
        "foreign_key": lambda: _sign(_claims(), Ed25519PrivateKey.generate()),
        "not_access": lambda: _sign(_claims(typ="refresh")),
        "garbage": lambda: "abc.def.ghi",
    }[kind]()
    for base in (platform.service_url("ecg"), platform.gateway_url):
        assert httpx.get(base + SERVICE_PATH, headers=bearer(good)).status_code == 200
        r = httpx.get(base + SERVICE_PATH, headers=bearer(token))
        assert r.status_code == 401, f"{base} {kind}: {r.status_code} {r.text}"
        body = r.json()
        assert body["error"] == "unauthorized" and body["detail"]
        assert r.headers["www-authenticate"].startswith("Bearer")
    me = httpx.get(f"{platform.gateway_url}/auth/me", headers=bearer(token))
    assert me.status_code == 401 and me.json()["error"] == "unauthorized"


def test_display_name_claim_and_its_fallback() -> None:
    """``dn`` becomes Principal.display_name; a token without it (issued before) falls back to the username."""
    from common.auth import Principal, TokenVerifier

    key = Ed25519PrivateKey.generate()
    verifier = TokenVerifier([key.public_key()], issuer="iss-test", audience="aud-test")
    with_dn = verifier.verify(_sign(_claims(iss="iss-test", aud="aud-test", dn="孙主任（县医院）"), key))
    assert with_dn.username == "probe" and with_dn.display_name == "孙主任（县医院）"
    without = verifier.verify(_sign(_claims(iss="iss-test", aud="aud-test"), key))
    assert without.display_name == "probe"
    blank = verifier.verify(_sign(_claims(iss="iss-test", aud="aud-test", dn="  "), key))
    assert blank.display_name == "probe"
    built = Principal(user_id=uuid.uuid4(), username="someone", roles=frozenset(), facility_id=uuid.uuid4())
    assert built.display_name == "someone"


def test_signer_puts_the_display_name_in_dn() -> None:
    from gateway.identity.tokens import TokenSigner

    key = Ed25519PrivateKey.generate()
    signer = TokenSigner(key, issuer="iss-test", audience="aud-test", ttl_seconds=60)
    common = dict(user_id=uuid.uuid4(), roles=["specialist"], facility_id=uuid.uuid4(), serves=[], region_id=None)
    named = jwt.decode(signer.issue(username="specialist", display_name="孙主任（县医院）", **common).token,
                       key.public_key(), algorithms=["EdDSA"], audience="aud-test")
    assert named["name"] == "specialist" and named["dn"] == "孙主任（县医院）"
    plain = jwt.decode(signer.issue(username="startup-probe", **common).token, key.public_key(),
                       algorithms=["EdDSA"], audience="aud-test")
    assert plain["dn"] == "startup-probe"
