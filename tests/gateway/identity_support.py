"""Helpers for the identity, admin and audit tests: sign-in calls and accounts made through the admin API."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pyotp

from gateway.identity.seed import DEMO_PASSWORD, demo_facility

STRONG_PASSWORD = "Str0ng!pass-" + uuid.uuid4().hex[:6]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def fid(code: str) -> str:
    """The id of a demo facility by its code."""
    return str(demo_facility(code).id)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_call(base: str, **form: str) -> httpx.Response:
    return httpx.post(f"{base}/auth/token", data=form, timeout=15)


def password_login(
    base: str, username: str, password: str = DEMO_PASSWORD, totp: str | None = None, **extra: str
) -> httpx.Response:
    form = {"grant_type": "password", "username": username, "password": password, **extra}
    if totp is not None:
        form["totp"] = totp
    return token_call(base, **form)


def refresh(base: str, refresh_token: str) -> httpx.Response:
    return token_call(base, grant_type="refresh_token", refresh_token=refresh_token)


def make_user(
    base: str,
    login: Callable[[str], str],
    *,
    roles: list[str],
    facility_code: str,
    password: str = STRONG_PASSWORD,
    as_user: str = "admin",
) -> dict[str, Any]:
    """A fresh account made through the admin API (as the platform admin unless told otherwise); the
    answer's JSON, with ``password`` added."""
    r = httpx.post(
        f"{base}/api/admin/users",
        headers=bearer(login(as_user)),
        timeout=15,
        json={
            "username": unique("t"),
            "display_name": "测试用户",
            "facility_id": fid(facility_code),
            "roles": roles,
            "password": password,
        },
    )
    assert r.status_code == 201, r.text
    return {**r.json(), "password": password}


def totp_now(user: dict[str, Any]) -> str:
    return str(pyotp.TOTP(user["totp"]["secret"]).now())


def wrong_code(right: str) -> str:
    return f"{(int(right) + 500000) % 1000000:06d}"
