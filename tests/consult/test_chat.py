"""The consult chat: two sockets through the gateway hear each other, a socket on a second consult process
hears them too (Redis fan-out), history pages back, files come back byte for byte, outsiders are refused."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conftest import Platform, _start, _wait_ready, auth
from tests.consult.flow_support import accepted_consult, api


def ws_url(base: str, consult_id: str) -> str:
    return "ws" + base[4:] + f"/api/consult/consults/{consult_id}/chat"


def next_of(ws: ClientConnection, kind: str, timeout: float = 15) -> dict[str, Any]:
    """The next message of ``kind`` (heartbeats and others skipped)."""
    while True:
        msg = json.loads(ws.recv(timeout=timeout))
        if msg.get("type") == kind:
            return dict(msg)


@pytest.fixture(scope="module")
def consult(platform: Platform, login) -> str:
    return str(accepted_consult(platform.gateway_url, login("doctor_a"), login("specialist"))["id"])


@pytest.fixture(scope="module")
def second_consult_process(platform: Platform) -> Iterator[str]:
    """Another consult service process on the same database and Redis (as when scaled out)."""
    from infra.local.stack import free_port

    port = free_port()
    proc = _start("consult-2", "services.consult.app:app", port, {**os.environ, **platform.env}, platform.log_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, "consult-2", platform.log_dir)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_two_sockets_hear_each_other(platform: Platform, login, consult: str, second_consult_process: str) -> None:
    gw = platform.gateway_url
    doctor, spec = login("doctor_a"), login("specialist")
    with connect(f"{ws_url(gw, consult)}?access_token={doctor}", open_timeout=10) as a, \
            connect(ws_url(gw, consult), subprotocols=["bearer", spec], open_timeout=10) as b, \
            connect(f"{ws_url(second_consult_process, consult)}?access_token={spec}", open_timeout=10) as c:
        assert b.subprotocol == "bearer"
        for ws in (a, b, c):
            ready = next_of(ws, "ready")
            assert ready["can_post"] is True
        a.send(json.dumps({"type": "message", "text": "您好,患者心电图已上传。", "client_id": "a-1"}))
        got_b, got_c, echo = next_of(b, "message"), next_of(c, "message"), next_of(a, "message")
        assert got_b["text"] == got_c["text"] == echo["text"] == "您好,患者心电图已上传。"
        assert echo["client_id"] == "a-1" and got_b["id"] == echo["id"]
        assert got_b["author_name"] and got_b["kind"] == "text"
        c.send(json.dumps({"type": "message", "text": "收到,正在查看。"}))  # through the other process
        assert next_of(a, "message")["text"] == "收到,正在查看。"
        assert next_of(b, "message")["text"] == "收到,正在查看。"
        a.send(json.dumps({"type": "message", "text": "   "}))
        assert next_of(a, "error")["code"] == "invalid"
        a.send(json.dumps({"type": "ping"}))
        assert next_of(a, "pong") == {"type": "pong"}

    # persisted: the history has both, oldest first, and pages back
    page = httpx.get(api(gw, f"/consults/{consult}/messages"), headers=auth(spec)).json()
    texts = [m["text"] for m in page["items"]]
    assert texts[-2:] == ["您好,患者心电图已上传。", "收到,正在查看。"]
    newest = httpx.get(api(gw, f"/consults/{consult}/messages"), params={"limit": 1}, headers=auth(doctor)).json()
    assert [m["text"] for m in newest["items"]] == ["收到,正在查看。"]
    older = httpx.get(api(gw, f"/consults/{consult}/messages"), params={"limit": 1, "before": newest["next_before"]},
                      headers=auth(doctor)).json()
    assert [m["text"] for m in older["items"]] == ["您好,患者心电图已上传。"]


def test_http_post_reaches_sockets(platform: Platform, login, consult: str) -> None:
    gw = platform.gateway_url
    with connect(f"{ws_url(gw, consult)}?access_token={login('specialist')}", open_timeout=10) as b:
        next_of(b, "ready")
        r = httpx.post(api(gw, f"/consults/{consult}/messages"), headers=auth(login("doctor_a")),
                       json={"text": "血压 150/95 mmHg"})
        assert r.status_code == 201, r.text
        assert next_of(b, "message")["id"] == r.json()["id"]


def test_file_upload_and_download(platform: Platform, login, consult: str) -> None:
    gw = platform.gateway_url
    doctor, spec = login("doctor_a"), login("specialist")
    data = os.urandom(700_000) + b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    with connect(f"{ws_url(gw, consult)}?access_token={spec}", open_timeout=10) as b:
        next_of(b, "ready")
        r = httpx.post(api(gw, f"/consults/{consult}/messages/files"), headers=auth(doctor), timeout=60,
                       files={"file": ("心电图 截图.png", data, "image/png")})
        assert r.status_code == 201, r.text
        message = r.json()
        heard = next_of(b, "message")
    assert heard["id"] == message["id"] and heard["kind"] == "file"
    assert message["file"] == {"name": "心电图 截图.png", "content_type": "image/png", "size_bytes": len(data),
                               "sha256": hashlib.sha256(data).hexdigest()}
    for token in (doctor, spec):
        got = httpx.get(api(gw, f"/consults/{consult}/messages/{message['id']}/file"), headers=auth(token), timeout=60)
        assert got.status_code == 200, got.text
        assert got.content == data and got.headers["content-type"] == "image/png"
        assert got.headers["x-content-type-options"] == "nosniff"
    text_id = httpx.get(api(gw, f"/consults/{consult}/messages"), headers=auth(doctor)).json()["items"][0]["id"]
    assert httpx.get(api(gw, f"/consults/{consult}/messages/{text_id}/file"), headers=auth(doctor)).status_code == 404

    too_big = httpx.post(api(gw, f"/consults/{consult}/messages/files"), headers=auth(doctor), timeout=60,
                         files={"file": ("big.bin", b"\0" * (5 * 1024 * 1024 + 1), "application/octet-stream")})
    assert too_big.status_code == 413, too_big.text
    latest = httpx.get(api(gw, f"/consults/{consult}/messages"), params={"limit": 1}, headers=auth(doctor)).json()
    assert latest["items"][0]["id"] == message["id"]  # the refused file left no message


def test_outsiders_are_refused(platform: Platform, login, consult: str) -> None:
    gw, outsider = platform.gateway_url, login("doctor_b")
    for base in (gw, platform.service_url("consult")):
        for cid in (consult, str(uuid.uuid4())):
            with pytest.raises(InvalidStatus) as refused:
                connect(f"{ws_url(base, cid)}?access_token={outsider}", open_timeout=10)
            assert refused.value.response.status_code == 404
        with pytest.raises(InvalidStatus) as anonymous:
            connect(ws_url(base, consult), open_timeout=10)
        assert anonymous.value.response.status_code == 401
        for method, path, kw in (
            ("GET", f"/consults/{consult}/messages", {}),
            ("POST", f"/consults/{consult}/messages", {"json": {"text": "x"}}),
            ("POST", f"/consults/{consult}/messages/files", {"files": {"file": ("a.txt", b"x", "text/plain")}}),
        ):
            r = httpx.request(method, api(base, path), headers=auth(outsider), **kw)
            assert r.status_code == 404, f"{method} {path}: {r.status_code} {r.text}"
    # a colleague at the requesting centre may read but not post (only participants post)
    page = httpx.get(api(gw, f"/consults/{consult}/messages"), headers=auth(login("tech_a")))
    assert page.status_code == 200
    r = httpx.post(api(gw, f"/consults/{consult}/messages"), headers=auth(login("tech_a")), json={"text": "x"})
    assert r.status_code == 403
    with connect(f"{ws_url(gw, consult)}?access_token={login('tech_a')}", open_timeout=10) as ws:
        assert next_of(ws, "ready")["can_post"] is False
