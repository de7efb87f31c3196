"""The routing layer in the whole platform: real services behind the real gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx


def test_readyz_is_ready_when_every_service_is(platform: Any) -> None:
    r = httpx.get(f"{platform.gateway_url}/readyz", timeout=10)
    assert r.status_code == 200, r.text
    checks = r.json()["checks"]
    for name in ("imaging", "ecg", "pathology", "consult", "health_mgmt"):
        assert checks[f"service:{name}"] == "ok"
    assert checks["database"] == checks["redis"] == checks["storage"] == "ok"


def test_openapi_lists_every_service(platform: Any) -> None:
    doc = httpx.get(f"{platform.gateway_url}/openapi.json", timeout=10).json()
    assert "x-unavailable-services" not in doc["info"]
    services = {op.get("x-service") for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)}
    assert {"imaging", "ecg", "pathology", "consult", "health_mgmt"} <= services
    assert "/auth/token" in doc["paths"]
    assert {t["name"] for t in doc["tags"]} >= {"imaging", "health_mgmt"}


def test_a_demo_user_reaches_a_service_through_the_gateway(platform: Any, login: Callable[[str], str]) -> None:
    token = login("doctor_a")
    r = httpx.get(
        f"{platform.gateway_url}/api/imaging/capabilities",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-me-1"},
        timeout=10,
    )
    assert r.status_code == 200 and r.json()["service"] == "imaging"
    assert r.headers["x-request-id"] == "trace-me-1"
