"""Sign-in through the gateway: every demo role, token claims, the second factor, lockout, unknown users."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pyotp
import pytest
from jwt import PyJWK

from common.auth import TokenVerifier, load_public_keys
from gateway.identity.seed import COUNTY_HOSPITAL, DEMO_ACCOUNTS, DEMO_FACILITIES, DEMO_PASSWORD, REGION
from tests.conftest import Platform, fresh_totp
from tests.gateway.identity_support import (
    bearer,
    fid,
    make_user,
    password_login,
    token_call,
    totp_now,
    unique,
    wrong_code,
)


def _verifier(stack: Any) -> TokenVerifier:
    from common.config import platform_settings

    s = platform_settings()
    return TokenVerifier(load_public_keys(s.public_key_path), issuer=s.jwt_issuer, audience=s.jwt_audience)


@pytest.mark.parametrize("account", DEMO_ACCOUNTS, ids=lambda a: a.username)
def test_every_demo_account_signs_in(platform: Platform, stack: Any, account: Any) -> None:
    r = password_login(platform.gateway_url, account.username, totp=fresh_totp(account.username))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    assert len(body["refresh_token"]) >= 40
    user = body["user"]
    assert user["username"] == account.username and user["roles"] == [account.role]
    assert user["facility"]["id"] == fid(account.facility_code)
    assert set(user["facility"]) == {"id", "name_zh", "name_en", "kind"}
    assert "password_hash" not in r.text and "totp" not in r.text

    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "EdDSA" and header["kid"]
    claims = _verifier(stack).claims(body["access_token"])
    assert set(claims) == {
        "iss", "aud", "sub", "exp", "iat", "jti", "typ", "name", "dn", "roles", "fac", "serves", "region"
    }
    assert claims["typ"] == "access" and claims["exp"] - claims["iat"] == 900
    assert claims["name"] == account.username and claims["region"] == fid(REGION)
    assert claims["dn"] == account.display_name == user["display_name"]
    principal = _verifier(stack).verify(body["access_token"])
    assert str(principal.user_id) == user["id"]
    assert principal.username == account.username and principal.display_name == account.display_name


def test_serves_of_the_county_hospital(platform: Platform, stack: Any) -> None:
    """The county hospital reads for its three townships and the village clinic below 城关镇."""
    body = password_login(platform.gateway_url, "specialist").json()
    claims = _verifier(stack).claims(body["access_token"])
    expected = {fid(f.code) for f in DEMO_FACILITIES if f.kind in ("township", "village")}
    demo = {fid(f.code) for f in DEMO_FACILITIES}
    # other tests add facilities under the county hospital; among the demo region's, exactly these
    assert set(claims["serves"]) & demo == expected
    assert claims["fac"] == fid(COUNTY_HOSPITAL)
    city = _verifier(stack).claims(password_login(platform.gateway_url, "specialist_city").json()["access_token"])
    assert city["serves"] == []
    township = _verifier(stack).claims(password_login(platform.gateway_url, "doctor_a").json()["access_token"])
    assert township["serves"] == []


def test_jwks_publishes_the_signing_key(platform: Platform) -> None:
    keys = httpx.get(f"{platform.gateway_url}/.well-known/jwks.json").json()["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "OKP" and keys[0]["crv"] == "Ed25519"
    token = password_login(platform.gateway_url, "doctor_a").json()["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == keys[0]["kid"]
    claims = jwt.decode(token, PyJWK(keys[0]).key, algorithms=["EdDSA"], audience="telehealth")
    assert claims["name"] == "doctor_a"


def test_me_reflects_the_account(platform: Platform, login: Callable[[str], str]) -> None:
    r = httpx.get(f"{platform.gateway_url}/auth/me", headers=bearer(login("hospital_admin")))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["username"] == "hospital_admin" and me["mfa_enrolled"] is True
    demo = {fid(f.code) for f in DEMO_FACILITIES}
    assert me["region_id"] == fid(REGION)
    assert set(me["serves"]) & demo == {fid(c) for c in ("QH-CG", "QH-CG-DC", "QH-LJ", "QH-WZ")}
    assert httpx.get(f"{platform.gateway_url}/auth/me").status_code == 401


def test_wrong_password_and_unknown_user_answer_alike(platform: Platform) -> None:
    wrong = password_login(platform.gateway_url, "tech_b", "Wrong-pass-1")
    unknown = password_login(platform.gateway_url, unique("nobody"), "Wrong-pass-1")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "invalid_grant", "detail": "the username or password is wrong"}
    # similar cost: both verify an argon2 hash (the unknown user against a dummy one)
    timings = {}
    for name in ("tech_b", unique("nobody")):
        started = time.perf_counter()
        password_login(platform.gateway_url, name, "Wrong-pass-2")
        timings[name] = time.perf_counter() - started
    fast, slow = sorted(timings.values())
    assert slow < fast * 3 + 0.05, timings
    # tech_b's count is cleared by a successful sign-in, so other tests see a fresh account
    assert password_login(platform.gateway_url, "tech_b").status_code == 200


def test_bad_requests(platform: Platform) -> None:
    base = platform.gateway_url
    assert token_call(base).json()["error"] == "invalid_request"
    assert token_call(base, grant_type="client_credentials").json()["error"] == "unsupported_grant_type"
    assert token_call(base, grant_type="password", username="doctor_a").status_code == 400
    as_json = httpx.post(
        f"{base}/auth/token", json={"grant_type": "password", "username": "doctor_a", "password": DEMO_PASSWORD}
    )
    assert as_json.status_code == 400  # OAuth2 token requests are form-encoded


def test_admins_need_the_second_factor(platform: Platform, login: Callable[[str], str]) -> None:
    base = platform.gateway_url
    admin = make_user(base, login, roles=["facility_admin"], facility_code=COUNTY_HOSPITAL)
    assert admin["mfa_enrolled"] is True
    assert admin["totp"]["otpauth_uri"].startswith("otpauth://totp/")

    missing = password_login(base, admin["username"], admin["password"])
    assert missing.status_code == 401 and missing.json()["error"] == "mfa_required"
    wrong = password_login(base, admin["username"], admin["password"], totp=wrong_code(totp_now(admin)))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_grant"
    ok = password_login(base, admin["username"], admin["password"], totp=totp_now(admin))
    assert ok.status_code == 200, ok.text
    # a right code with a wrong password is still a wrong password
    bad = password_login(base, admin["username"], "Wrong-pass-1", totp=totp_now(admin))
    assert bad.json()["error"] == "invalid_grant"

    listed = httpx.get(f"{base}/api/admin/users/{admin['id']}", headers=bearer(login("admin"))).json()
    assert listed["failed_attempts"] == 1  # the wrong password after the success
    assert "totp" not in listed and "secret" not in str(listed)


async def test_a_totp_code_signs_in_once(platform: Platform, login: Callable[[str], str], admin_db: Any) -> None:
    """RFC 6238 §5.2: a code that was accepted is not accepted again, nor one of an earlier step; the refusal
    looks and counts like a wrong code. The next step's code works (the ±1-step window takes it now)."""
    base = platform.gateway_url
    admin = make_user(base, login, roles=["facility_admin"], facility_code=COUNTY_HOSPITAL)
    totp = pyotp.TOTP(admin["totp"]["secret"])
    step = totp.timecode(time.time())

    def sign_in(code: str) -> httpx.Response:
        return password_login(base, admin["username"], admin["password"], totp=code)

    code = totp.generate_otp(step)
    assert sign_in(code).status_code == 200
    replay = sign_in(code)
    wrong = sign_in(wrong_code(code))
    assert replay.status_code == wrong.status_code == 401
    assert replay.json() == wrong.json()
    assert replay.json() == {"error": "invalid_grant", "detail": "the authenticator code is wrong or expired"}
    assert sign_in(totp.generate_otp(step - 1)).status_code == 401  # still in the window, but older
    async with admin_db.transaction() as conn:
        counted = await conn.fetchrow(
            "SELECT failed_attempts, locked_until FROM gateway.users WHERE id = $1", uuid.UUID(admin["id"])
        )
    assert counted["failed_attempts"] == 3 and counted["locked_until"] is None

    following = totp.generate_otp(step + 1)
    assert sign_in(following).status_code == 200
    assert sign_in(following).status_code == 401  # and it, too, only once

    async with admin_db.transaction() as conn:
        rows = await conn.fetch(
            "SELECT action, status_code, detail->>'reason' AS reason FROM audit.events"
            " WHERE object_id = $1 AND action LIKE 'auth.%' ORDER BY seq",
            admin["id"],
        )
        last_step = await conn.fetchval(
            "SELECT totp_last_step FROM gateway.users WHERE id = $1", uuid.UUID(admin["id"])
        )
    assert last_step == step + 1
    reasons = [(r["action"], r["status_code"], r["reason"]) for r in rows]
    assert reasons[0] == ("auth.login", 200, None)
    assert reasons[1:3] == [("auth.mfa", 401, "totp_replay"), ("auth.mfa", 401, "bad_totp")]
    assert reasons[4] == ("auth.login", 200, None)
    assert reasons[5] == ("auth.mfa", 401, "totp_replay")


async def test_racing_sign_ins_with_one_code_make_one_session(platform: Platform, login: Callable[[str], str]) -> None:
    """Two requests with the same code at once: the step is claimed by a conditional UPDATE in the sign-in's
    transaction, so exactly one of them gets tokens."""
    base = platform.gateway_url
    admin = make_user(base, login, roles=["facility_admin"], facility_code=COUNTY_HOSPITAL)
    form = {
        "grant_type": "password",
        "username": admin["username"],
        "password": admin["password"],
        "totp": totp_now(admin),
    }
    async with httpx.AsyncClient(base_url=base, timeout=15) as client:
        answers = await asyncio.gather(*(client.post("/auth/token", data=form) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 401], [a.text for a in answers]


def test_wrong_totp_counts_toward_lockout(platform: Platform, login: Callable[[str], str]) -> None:
    base = platform.gateway_url
    admin = make_user(base, login, roles=["facility_admin"], facility_code=COUNTY_HOSPITAL)
    answers = [
        password_login(base, admin["username"], admin["password"], totp=wrong_code(totp_now(admin))) for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 423]
    locked = password_login(base, admin["username"], admin["password"], totp=totp_now(admin))
    assert locked.status_code == 423 and locked.json()["error"] == "locked"


async def test_lockout_after_five_failures_and_its_expiry(
    platform: Platform, login: Callable[[str], str], admin_db: Any
) -> None:
    base = platform.gateway_url
    user = make_user(base, login, roles=["technician"], facility_code="QH-LJ")
    async with httpx.AsyncClient(base_url=base, timeout=15) as client:

        async def attempt(password: str) -> httpx.Response:
            return await client.post(
                "/auth/token", data={"grant_type": "password", "username": user["username"], "password": password}
            )

        statuses = [(await attempt("Wrong-pass-1")).status_code for _ in range(5)]
        assert statuses == [401, 401, 401, 401, 423]
        locked = await attempt(user["password"])  # even the right password is refused while locked
        assert locked.status_code == 423
        assert locked.json() == {"error": "locked", "detail": locked.json()["detail"]}
        assert 850 <= int(locked.headers["retry-after"]) <= 900

        async with admin_db.transaction() as conn:  # fast-forward: the lock ran out
            await conn.execute(
                "UPDATE gateway.users SET locked_until = now() - interval '1 second' WHERE id = $1",
                uuid.UUID(user["id"]),
            )
        after = await attempt(user["password"])
        assert after.status_code == 200, after.text
        assert (await attempt("Wrong-pass-1")).status_code == 401  # the count started again


def test_unknown_usernames_lock_out_too(platform: Platform) -> None:
    """So the lockout does not reveal which usernames exist."""
    name = unique("ghost")
    statuses = [password_login(platform.gateway_url, name, "Wrong-pass-1").status_code for _ in range(6)]
    assert statuses == [401, 401, 401, 401, 423, 423]
    last = password_login(platform.gateway_url, name, "Wrong-pass-1")
    assert last.json()["error"] == "locked" and int(last.headers["retry-after"]) > 0


async def test_sign_in_events_are_audited(platform: Platform, admin_db: Any) -> None:
    base = platform.gateway_url
    ok = password_login(base, "phd_a").json()
    password_login(base, "phd_a", "Wrong-pass-9")
    password_login(base, "phd_a")  # clears the count again
    async with admin_db.transaction() as conn:
        rows = await conn.fetch(
            "SELECT action, outcome, status_code, detail::text AS detail, source, client_addr FROM audit.events"
            " WHERE actor_id = $1 AND action LIKE 'auth.%' ORDER BY seq DESC LIMIT 3",
            uuid.UUID(ok["user"]["id"]),
        )
    assert [(r["action"], r["outcome"], r["status_code"]) for r in rows] == [
        ("auth.login", "success", 200),
        ("auth.login", "failure", 401),
        ("auth.login", "success", 200),
    ]
    assert all(r["source"] == "gateway" and r["client_addr"] == "127.0.0.1" for r in rows)
    assert "Wrong-pass-9" not in rows[1]["detail"] and DEMO_PASSWORD not in rows[0]["detail"]
    assert '"bad_password"' in rows[1]["detail"]
