"""Helpers for the gateway's routing tests: a small upstream service, a broken one, tokens, and a gateway
process pointed at them.

The upstream runs in a thread of the test process (uvicorn, its own loop); the gateway is the real
``gateway.app:app`` in its own process, so its memory can be measured alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import orjson
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.local.stack import free_port

REPO = Path(__file__).resolve().parents[2]
CHUNK = b"0123456789abcdef" * 4096  # 64 KiB


# -- tokens --------------------------------------------------------------------------------------------


def mint(
    key: Ed25519PrivateKey,
    *,
    sub: str | None = None,
    expires_in: int = 600,
    audience: str = "telehealth",
    issuer: str = "telehealth-gateway",
    typ: str = "access",
    **extra: Any,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": sub or str(uuid.uuid4()),
        "iat": now,
        "exp": now + expires_in,
        "jti": uuid.uuid4().hex,
        "typ": typ,
        "name": "tester",
        "roles": ["township_doctor"],
        "fac": str(uuid.uuid4()),
        "serves": [],
        **extra,
    }
    return jwt.encode(claims, key, algorithm="EdDSA")


def gateway_key(var_dir: Path) -> Ed25519PrivateKey:
    from gateway.identity.keys import ensure_keys, load_private_key

    return load_private_key(ensure_keys(var_dir / "keys"))


# -- the upstream ---------------------------------------------------------------------------------------


@dataclass
class UpstreamLog:
    ws_closes: list[int | None] = field(default_factory=list)


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any, log: UpstreamLog) -> None:
    """A stand-in service under /api/imaging: echo, streaming up and down, slow and broken answers, WS."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await _upstream_ws(scope, receive, send, log)
        return
    path: str = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path.endswith("/download"):
        size = int(query.get("size", "0"))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"), (b"content-length", str(size).encode())],
            }
        )
        sent = 0
        while sent < size:
            part = CHUNK[: min(len(CHUNK), size - sent)]
            sent += len(part)
            await send({"type": "http.response.body", "body": part, "more_body": sent < size})
        return
    if path.endswith("/slow"):
        await asyncio.sleep(float(query.get("seconds", "1")))
    if path.endswith("/broken"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100000")]})
        await send({"type": "http.response.body", "body": b"x" * 10, "more_body": True})
        raise RuntimeError("upstream broke on purpose")
    digest = hashlib.sha256()
    size = 0
    while True:
        message = await receive()
        body = message.get("body", b"")
        digest.update(body)
        size += len(body)
        if not message.get("more_body"):
            break
    if path.endswith("/status"):
        status = int(query.get("code", "200"))
        payload = orjson.dumps({"error": "teapot" if status == 418 else "x", "detail": "as asked"})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"set-cookie", b"upstream=1; Path=/")],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return
    echo = {
        "method": scope["method"],
        "path": path,
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query": scope["query_string"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "body_len": size,
        "sha256": digest.hexdigest(),
    }
    body = orjson.dumps(echo)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"x-upstream", b"yes"),
                (b"connection", b"keep-alive"),
                (b"keep-alive", b"timeout=5"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _upstream_ws(scope: dict[str, Any], receive: Any, send: Any, log: UpstreamLog) -> None:
    await receive()  # websocket.connect
    if scope["path"].endswith("/ws-refuse"):
        await send({"type": "websocket.close", "code": 1008})
        return
    offered = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            log.ws_closes.append(message.get("code"))
            return
        text = message.get("text")
        if text and text.startswith("close:"):
            await send({"type": "websocket.close", "code": int(text.split(":")[1]), "reason": "bye"})
            return
        if text == "headers":
            await send(
                {
                    "type": "websocket.send",
                    "text": orjson.dumps([[k.decode(), v.decode()] for k, v in scope["headers"]]).decode(),
                }
            )
        elif text is not None:
            await send({"type": "websocket.send", "text": "echo:" + text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})


class ThreadServer:
    """A uvicorn server on a free loopback port, in a background thread."""

    def __init__(self, app: Any):
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", ws_max_size=64 * 1024 * 1024
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("upstream did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class GarbageServer:
    """Accepts a connection, reads a little and answers with something that is not HTTP."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")

    def close(self) -> None:
        self._stop = True
        self.thread.join(timeout=2)
        self.sock.close()


def dead_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


# -- the gateway process ------------------------------------------------------------------------------


@dataclass
class GatewayProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def rss_kib(self, field_name: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"{field_name} not found")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def gateway_process(
    env_overrides: dict[str, str], log_dir: Path, name: str = "gateway", extra_args: tuple[str, ...] = ()
) -> Iterator[GatewayProcess]:
    """The real gateway app under uvicorn. The public entry should run with ``--no-proxy-headers`` (or
    ``--forwarded-allow-ips`` naming the load balancer): uvicorn otherwise believes X-Forwarded-For from
    loopback peers."""
    port = free_port()
    env = {**os.environ, **env_overrides, "GATEWAY_URL": f"http://127.0.0.1:{port}"}
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "gateway.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "3",
                *extra_args,
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    gw = GatewayProcess(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{gw.log()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{gw.url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start:\n{gw.log()[-4000:]}")
            time.sleep(0.1)
        yield gw
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
