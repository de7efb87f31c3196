"""WebSocket pass-through: caller ⇄ gateway ⇄ service, both directions, close codes and subprotocols kept.

The gateway opens the service's WebSocket first (offering the caller's subprotocols) and accepts the
caller's only once the service has accepted, with the subprotocol the service chose. A service that refuses
the handshake (401, 403, 404…) is refused to the caller with the same status where the server supports
ASGI's WebSocket denial response, else with a policy close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import aiohttp
import orjson
from starlette.types import Receive, Scope, Send

from common.services import ServiceSpec

if TYPE_CHECKING:
    from gateway.proxy import ProxyRuntime

log = logging.getLogger("telehealth.proxy")

# Close codes that may not be sent in a close frame (RFC 6455 7.4.1).
_UNSENDABLE = frozenset({1004, 1005, 1006, 1015})


def _sendable(code: int | None) -> int:
    if code is None or code in _UNSENDABLE or not 1000 <= code <= 4999:
        return 1000
    return code


async def deny_websocket(scope: Scope, send: Send, status: int, code: str, detail: str, rid: str) -> None:
    """Refuse a WebSocket handshake with an HTTP answer in the error shape (or a close, as a fallback)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = orjson.dumps({"error": code, "detail": detail})
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"x-request-id", rid.encode())],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
        return
    close = {401: 4401, 403: 4403, 404: 4404, 429: 4429}.get(status, 1011 if status >= 500 else 1008)
    await send({"type": "websocket.close", "code": close, "reason": detail[:120]})


async def proxy_websocket(
    scope: Scope, receive: Receive, send: Send, *, spec: ServiceSpec, runtime: ProxyRuntime, rid: str
) -> None:
    from gateway.forwarding import forward_headers, upstream_url
    from gateway.proxy import authorize

    first = await receive()
    if first["type"] != "websocket.connect":
        return
    if await authorize(scope, send, spec, runtime, rid, websocket=True):
        return
    headers = forward_headers(scope, rid, runtime.settings.trusted(), websocket=True)
    try:
        upstream = await runtime.session.ws_connect(
            upstream_url(spec, scope, websocket=True),
            protocols=tuple(scope.get("subprotocols") or ()),
            headers=headers,
            autoping=True,
            max_msg_size=0,
            compress=0,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
        )
    except aiohttp.WSServerHandshakeError as exc:
        status = exc.status if 400 <= exc.status < 600 else 502
        await deny_websocket(
            scope,
            send,
            status,
            "refused" if status < 500 else "bad_gateway",
            f"the {spec.name} service refused the WebSocket ({exc.status})",
            rid,
        )
        return
    except aiohttp.ClientConnectorError:
        await deny_websocket(scope, send, 503, "unavailable", f"the {spec.name} service is unavailable", rid)
        return
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning("websocket upstream failed", extra={"service": spec.name, "error_type": type(exc).__name__})
        await deny_websocket(scope, send, 502, "bad_gateway", f"the {spec.name} service failed", rid)
        return

    await send(
        {"type": "websocket.accept", "subprotocol": upstream.protocol, "headers": [(b"x-request-id", rid.encode())]}
    )
    caller_closed = asyncio.Event()

    async def caller_to_service() -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                if message.get("text") is not None:
                    await upstream.send_str(message["text"])
                elif message.get("bytes") is not None:
                    await upstream.send_bytes(message["bytes"])
            elif kind == "websocket.disconnect":
                caller_closed.set()
                await upstream.close(
                    code=_sendable(message.get("code")), message=str(message.get("reason") or "").encode()[:120]
                )
                return

    async def service_to_caller() -> None:
        code: int | None = None
        reason = ""
        while True:
            msg = await upstream.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": msg.data})
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": msg.data})
            elif msg.type == aiohttp.WSMsgType.CLOSE:
                code, reason = int(msg.data), str(msg.extra or "")
                break
            else:  # CLOSING, CLOSED, ERROR
                code = upstream.close_code or 1011
                break
        # the service closed (or broke): pass its code on unless the caller closed first
        if not caller_closed.is_set():
            await send({"type": "websocket.close", "code": _sendable(code), "reason": reason[:120]})

    tasks = [asyncio.create_task(caller_to_service()), asyncio.create_task(service_to_caller())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            failure = task.exception()
            if failure is not None and not isinstance(failure, (aiohttp.ClientError, OSError)):
                log.warning("websocket relay ended with an error", extra={"error_type": type(failure).__name__})
        if tasks[0] in done:
            # the caller left: let the service's close handshake finish, then stop
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(tasks[1]), timeout=5)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()
