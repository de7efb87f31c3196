"""The gateway's forwarding: a real gateway process in front of a small upstream, a broken one and a dead one."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from tests.gateway.proxy_support import (
    CHUNK,
    GarbageServer,
    GatewayProcess,
    ThreadServer,
    UpstreamLog,
    dead_url,
    gateway_key,
    gateway_process,
    mint,
    upstream_app,
)

UPSTREAM_LOG = UpstreamLog()
SEEN: list[str] = []


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/openapi.json":
        doc = {
            "openapi": "3.1.0",
            "info": {"title": "imaging", "version": "1"},
            "paths": {
                "/api/imaging/things": {"get": {"tags": ["studies"], "responses": {}}},
                "/not-imaging": {"get": {"responses": {}}},
            },
            "components": {"schemas": {"HTTPValidationError": {"type": "string"}}},
        }
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": orjson.dumps(doc)})
        return
    if scope["type"] in ("http", "websocket"):
        SEEN.append(scope["path"])
    await upstream_app(scope, receive, send, UPSTREAM_LOG)


@pytest.fixture(scope="module")
def upstream() -> Iterator[ThreadServer]:
    with ThreadServer(_app) as server:
        yield server


@pytest.fixture(scope="module")
def gw(stack: Any, upstream: ThreadServer) -> Iterator[GatewayProcess]:
    garbage = GarbageServer()
    env = {
        "IMAGING_URL": upstream.url,
        "ECG_URL": garbage.url,
        "PATHOLOGY_URL": dead_url(),
        "CONSULT_URL": dead_url(),
        "HEALTH_MGMT_URL": dead_url(),
        "GATEWAY_READ_TIMEOUT": "1.5",
        "GATEWAY_RATE_KEY_PREFIX": f"rl-{uuid.uuid4().hex[:8]}",
    }
    try:
        with gateway_process(env, stack.var_dir / "logs", "gateway-proxy", ("--no-proxy-headers",)) as process:
            yield process
    finally:
        garbage.close()


@pytest.fixture(scope="module")
def token(stack: Any) -> str:
    return mint(gateway_key(stack.var_dir))


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _headers(echo: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in echo["headers"]:
        out.setdefault(name, []).append(value)
    return out


def test_forwards_path_query_headers_and_request_id(gw: GatewayProcess, token: str) -> None:
    r = httpx.get(
        f"{gw.url}/api/imaging/echo/a%2Fb?x=1&y=%E4%B8%AD&y=2",
        headers={
            **_auth(token),
            "X-Forwarded-For": "6.6.6.6",
            "X-Custom": "kept",
            "Connection": "keep-alive, X-Drop",
            "X-Drop": "hop",
            "X-Request-ID": "rid-123",
        },
    )
    assert r.status_code == 200, r.text + gw.log()[-3000:]
    echo = r.json()
    seen = _headers(echo)
    assert echo["raw_path"] == "/api/imaging/echo/a%2Fb"
    assert echo["query"] == "x=1&y=%E4%B8%AD&y=2"
    assert seen["x-forwarded-for"] == ["127.0.0.1"]  # the caller's own claim is not believed
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == [gw.url.removeprefix("http://")]
    assert seen["x-request-id"] == ["rid-123"]
    assert seen["x-custom"] == ["kept"]
    assert seen["authorization"] == [f"Bearer {token}"]  # the service verifies the token itself
    assert ("x-drop" not in seen and "connection" not in seen) or seen["connection"] != ["keep-alive, X-Drop"]
    assert r.headers["x-request-id"] == "rid-123"
    assert r.headers["x-upstream"] == "yes"
    assert "keep-alive" not in r.headers
    assert r.headers.get_list("date") and len(r.headers.get_list("date")) == 1


def test_makes_a_request_id_when_missing(gw: GatewayProcess, token: str) -> None:
    r = httpx.get(f"{gw.url}/api/imaging/echo", headers=_auth(token))
    rid = r.headers["x-request-id"]
    assert len(rid) >= 16 and _headers(r.json())["x-request-id"] == [rid]


def test_post_body_and_error_statuses_pass_through(gw: GatewayProcess, token: str) -> None:
    body = orjson.dumps({"hello": "世界", "n": list(range(1000))})
    r = httpx.post(
        f"{gw.url}/api/imaging/echo", content=body, headers={**_auth(token), "Content-Type": "application/json"}
    )
    assert r.status_code == 200
    assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert _headers(r.json())["content-length"] == [str(len(body))]
    teapot = httpx.put(f"{gw.url}/api/imaging/status?code=418", content=b"x", headers=_auth(token))
    assert teapot.status_code == 418 and teapot.json()["error"] == "teapot"
    assert teapot.headers["set-cookie"].startswith("upstream=1")


def test_unauthenticated_requests_never_reach_the_service(gw: GatewayProcess, stack: Any) -> None:
    SEEN.clear()
    missing = httpx.get(f"{gw.url}/api/imaging/echo")
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    garbage = httpx.get(f"{gw.url}/api/imaging/echo", headers=_auth("not.a.token"))
    assert garbage.status_code == 401
    expired = httpx.get(f"{gw.url}/api/imaging/echo", headers=_auth(mint(gateway_key(stack.var_dir), expires_in=-60)))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert SEEN == []


def test_service_down_is_503_with_retry_after(gw: GatewayProcess, token: str) -> None:
    r = httpx.get(f"{gw.url}/api/pathology/slides", headers=_auth(token))
    assert r.status_code == 503
    assert r.json()["error"] == "unavailable" and "pathology" in r.json()["detail"]
    assert int(r.headers["retry-after"]) > 0
    assert r.headers["x-request-id"]


def test_broken_upstream_is_502(gw: GatewayProcess, token: str) -> None:
    r = httpx.get(f"{gw.url}/api/ecg/records", headers=_auth(token))
    assert r.status_code == 502
    assert r.json()["error"] == "bad_gateway"


def test_slow_upstream_is_504(gw: GatewayProcess, token: str) -> None:
    r = httpx.get(f"{gw.url}/api/imaging/slow?seconds=4", headers=_auth(token), timeout=10)
    assert r.status_code == 504
    assert r.json()["error"] == "gateway_timeout"


def test_upstream_breaking_mid_body_cuts_the_caller_off(gw: GatewayProcess, token: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{gw.url}/api/imaging/broken", headers=_auth(token))
    assert httpx.get(f"{gw.url}/api/imaging/echo", headers=_auth(token)).status_code == 200


@pytest.mark.slow
def test_streams_300_mb_both_ways_in_flat_memory(gw: GatewayProcess, token: str) -> None:
    size = 300 * 1024 * 1024
    with httpx.Client(timeout=120) as client:
        client.get(f"{gw.url}/api/imaging/download?size={4 * len(CHUNK)}", headers=_auth(token)).read()
        before = gw.rss_kib("VmHWM")

        def chunks() -> Iterator[bytes]:
            for _ in range(size // len(CHUNK)):
                yield CHUNK

        up = client.post(
            f"{gw.url}/api/imaging/upload",
            content=chunks(),
            headers={**_auth(token), "Content-Type": "application/octet-stream"},
        )
        assert up.status_code == 200
        assert up.json()["body_len"] == size
        expected = hashlib.sha256()
        for _ in range(size // len(CHUNK)):
            expected.update(CHUNK)
        assert up.json()["sha256"] == expected.hexdigest()

        got = hashlib.sha256()
        received = 0
        with client.stream("GET", f"{gw.url}/api/imaging/download?size={size}", headers=_auth(token)) as down:
            assert down.status_code == 200
            assert down.headers["content-length"] == str(size)
            for part in down.iter_raw():
                got.update(part)
                received += len(part)
        assert received == size and got.hexdigest() == expected.hexdigest()
    growth_mib = (gw.rss_kib("VmHWM") - before) / 1024
    assert growth_mib < 32, f"gateway peak memory grew by {growth_mib:.1f} MiB while streaming 2 x 300 MiB"


async def test_websocket_passes_both_ways_with_subprotocol_and_close_codes(gw: GatewayProcess, token: str) -> None:
    from websockets.asyncio.client import connect

    ws_url = gw.url.replace("http://", "ws://") + "/api/imaging/ws"
    UPSTREAM_LOG.ws_closes.clear()
    async with connect(ws_url, subprotocols=["th.v1", "th.v0"], additional_headers=_auth(token)) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "th.v1"
        await ws.send("hello 你好")
        assert await ws.recv() == "echo:hello 你好"
        await ws.send(b"\x00\x01\x02")
        assert await ws.recv() == b"\x02\x01\x00"
        await ws.send("headers")
        seen = dict(orjson.loads(await ws.recv()))
        assert seen["x-forwarded-for"] == "127.0.0.1" and seen["x-request-id"]
        await ws.close(code=4000, reason="done")
    for _ in range(50):
        if UPSTREAM_LOG.ws_closes:
            break
        await asyncio.sleep(0.05)
    assert UPSTREAM_LOG.ws_closes == [4000]

    async with connect(f"{ws_url}?access_token={token}") as ws:  # browsers pass the token in the query
        await ws.send("close:4321")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4321
    assert closed.value.rcvd.reason == "bye"


async def test_websocket_refusals(gw: GatewayProcess, token: str) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    base = gw.url.replace("http://", "ws://")
    with pytest.raises(InvalidStatus) as unauth:
        async with connect(f"{base}/api/imaging/ws"):
            pass
    assert unauth.value.response.status_code == 401
    assert orjson.loads(unauth.value.response.body or b"{}")["error"] == "unauthorized"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{base}/api/imaging/ws-refuse", additional_headers=_auth(token)):
            pass
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as down:
        async with connect(f"{base}/api/pathology/ws", additional_headers=_auth(token)):
            pass
    assert down.value.response.status_code == 503


def test_readyz_includes_every_service(gw: GatewayProcess) -> None:
    r = httpx.get(f"{gw.url}/readyz", timeout=10)
    assert r.status_code == 503
    body = r.json()
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
    assert body["checks"]["service:imaging"] == "ok"  # the stand-in answers 200
    assert {"service:pathology", "service:ecg", "service:consult", "service:health_mgmt"} <= set(body["down"])
    assert "service:imaging" not in body["down"]
    assert r.headers["retry-after"]


def test_aggregated_openapi_tolerates_down_services(gw: GatewayProcess) -> None:
    r = httpx.get(f"{gw.url}/openapi.json", timeout=10)
    assert r.status_code == 200
    doc = r.json()
    assert "/auth/token" in doc["paths"]  # the gateway's own
    things = doc["paths"]["/api/imaging/things"]["get"]
    assert things["tags"] == ["imaging", "imaging · studies"] and things["x-service"] == "imaging"
    assert "/not-imaging" not in doc["paths"]  # the gateway would not route it to imaging
    assert doc["components"]["schemas"]["imaging__HTTPValidationError"] == {"type": "string"}
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert set(doc["info"]["x-unavailable-services"]) == {"ecg", "pathology", "consult", "health_mgmt"}
    docs = httpx.get(f"{gw.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
