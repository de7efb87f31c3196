"""Bad input through the whole platform: always the error shape with the right 4xx, never a 500.

Malformed JSON, wrong types, oversized bodies, unknown routes, and broken tokens (expired, tampered, wrong
audience, ``alg=none``, HMAC confusion, a foreign key, a refresh token), through the gateway and, for the
tokens and unknown routes, at a service directly too.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.gateway.proxy_support import gateway_key, mint

PATIENTS = "/api/health/patients"


def _shape(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, f"{r.status_code} {r.text[:300]}"
    body = r.json()
    assert set(body) >= {"error", "detail"} and isinstance(body["detail"], str) and body["detail"], body
    if code:
        assert body["error"] == code, body
    return dict(body)


@pytest.fixture(scope="module")
def key(stack: Any) -> Ed25519PrivateKey:
    return gateway_key(stack.var_dir)


@pytest.fixture(scope="module")
def doctor(key: Ed25519PrivateKey) -> dict[str, str]:
    """A well-signed token of a township doctor (validation answers before any row is looked at)."""
    return {"Authorization": f"Bearer {mint(key)}"}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def test_malformed_json_is_400(platform: Any, client: httpx.Client, doctor: dict[str, str]) -> None:
    for base in (platform.gateway_url, platform.service_url("health_mgmt")):
        r = client.post(
            f"{base}{PATIENTS}",
            content='{"name": "张三",'.encode(),
            headers={**doctor, "Content-Type": "application/json"},
        )
        _shape(r, 400, "malformed_json")


def test_wrong_types_are_422_naming_the_field(platform: Any, client: httpx.Client, doctor: dict[str, str]) -> None:
    base = platform.gateway_url
    for body, field in (
        ({"name": 123}, "name"),
        ({"name": "张三", "birth_date": "yesterday"}, "birth_date"),
        ({"name": "张三", "surprise": True}, "surprise"),
        ([1, 2, 3], "body"),
    ):
        r = client.post(f"{base}{PATIENTS}", json=body, headers=doctor)
        assert field in _shape(r, 422, "invalid")["detail"]
    _shape(client.get(f"{base}{PATIENTS}?limit=many", headers=doctor), 422, "invalid")
    _shape(client.get(f"{base}{PATIENTS}?limit=100000", headers=doctor), 422, "invalid")
    _shape(client.get(f"{base}{PATIENTS}/not-a-uuid", headers=doctor), 422, "invalid")
    r = client.post(f"{base}/auth/token", data={"grant_type": "password"})
    assert 400 <= r.status_code < 500 and "error" in r.json()


def test_bodies_over_the_limit_are_413(platform: Any, client: httpx.Client, doctor: dict[str, str]) -> None:
    big = b'{"name": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    for base in (platform.gateway_url, platform.service_url("health_mgmt")):
        r = client.post(f"{base}{PATIENTS}", content=big, headers={**doctor, "Content-Type": "application/json"})
        _shape(r, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body streams
        yield b'{"name": "'
        for _ in range(9):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    r = client.post(
        f"{platform.gateway_url}{PATIENTS}", content=chunks(), headers={**doctor, "Content-Type": "application/json"}
    )
    _shape(r, 413, "payload_too_large")
    r = client.post(
        f"{platform.gateway_url}/auth/token", content=big, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    _shape(r, 413, "payload_too_large")


def test_unknown_routes_are_404_in_the_error_shape(platform: Any, client: httpx.Client, doctor: dict[str, str]) -> None:
    gw = platform.gateway_url
    _shape(client.get(f"{gw}/api/health/no-such-thing", headers=doctor), 404, "not_found")
    _shape(
        client.get(f"{platform.service_url('health_mgmt')}/api/health/no-such-thing", headers=doctor), 404, "not_found"
    )
    _shape(client.get(f"{gw}/api/no-such-service", headers=doctor), 404, "not_found")
    _shape(client.get(f"{gw}/no/such/page", headers={"Accept": "application/json"}), 404, "not_found")
    _shape(client.get(f"{gw}/api/imaging/no-such-thing", headers=doctor), 404, "not_found")
    r = client.delete(f"{gw}/auth/me", headers=doctor)
    assert r.status_code in (404, 405) and "error" in r.json()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bad_tokens(key: Ed25519PrivateKey) -> dict[str, str]:
    good = mint(key)
    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["platform_admin"]
    tampered = f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"
    none_head = _b64(b'{"alg":"none","typ":"JWT"}')
    none_token = f"{none_head}.{payload}."
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    hmac_claims = {
        "iss": "telehealth-gateway",
        "aud": "telehealth",
        "sub": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 600,
        "typ": "access",
        "fac": str(uuid.uuid4()),
    }
    hmac_token = _hs256(hmac_claims, public_pem)
    return {
        "expired": mint(key, expires_in=-120),
        "tampered": tampered,
        "wrong audience": mint(key, audience="someone-else"),
        "wrong issuer": mint(key, issuer="evil"),
        "alg none": none_token,
        "hmac with the public key": hmac_token,
        "foreign key": mint(Ed25519PrivateKey.generate()),
        "refresh token": mint(key, typ="refresh"),
        "no facility": mint(key, fac=None),
        "garbage": "not-a-jwt",
        "empty segments": "..",
    }


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    import hashlib
    import hmac

    head = _b64(b'{"alg":"HS256","typ":"JWT"}')
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def test_bad_tokens_are_401_at_the_gateway_and_at_the_service(
    platform: Any, client: httpx.Client, key: Ed25519PrivateKey
) -> None:
    targets = [
        f"{platform.gateway_url}{PATIENTS}",
        f"{platform.service_url('health_mgmt')}{PATIENTS}",
        f"{platform.gateway_url}/api/imaging/capabilities",
        f"{platform.gateway_url}/auth/me",
    ]
    for name, token in _bad_tokens(key).items():
        for url in targets:
            r = client.get(url, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, f"{name} at {url}: {r.status_code} {r.text[:200]}"
            _shape(r, 401, "unauthorized")
    for header in ("Bearer", "Basic dXNlcjpwYXNz", "bearer", "Token abc"):
        r = client.get(targets[0], headers={"Authorization": header})
        _shape(r, 401, "unauthorized")


def test_jwt_library_refuses_alg_none_too(key: Ed25519PrivateKey) -> None:
    """A guard on the library: decoding with our settings never accepts an unsigned token."""
    token = _bad_tokens(key)["alg none"]
    with pytest.raises(jwt.PyJWTError):
        jwt.decode(token, key.public_key(), algorithms=["EdDSA"], audience="telehealth")
