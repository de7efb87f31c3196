"""What the gateway sends on and answers by itself: forwarded headers, upstream URLs, the caller's address
and token, and errors in the platform's shape written straight to ASGI."""

from __future__ import annotations

import ipaddress
import os
import time
from urllib.parse import parse_qs
from uuid import UUID

import orjson
from multidict import CIMultiDict
from starlette.types import Scope, Send
from yarl import URL

from common.app import client_address
from common.auth import TokenVerifier
from common.errors import Unauthorized, Unavailable
from common.services import ServiceSpec

# Hop-by-hop headers (RFC 9110 7.6.1) and those the gateway sets itself.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"expect",
        b"x-request-id",
    }
)
_FORWARDED = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded"})
# uvicorn writes its own Date and Server: the service's would appear twice.
DROP_RESPONSE = frozenset({*_HOP_BY_HOP, b"date", b"server"})


class VerifiedTokens:
    """Tokens already verified, by their text, until they expire: a signature check per token, not per
    request. A token's text is its own proof; revocation is the services' and the refresh flow's concern."""

    def __init__(self, max_entries: int = 50_000):
        self._subjects: dict[str, tuple[float, str]] = {}
        self._max = max_entries

    def subject(self, verifier: TokenVerifier | None, token: str) -> str:
        hit = self._subjects.get(token)
        now = time.time()
        if hit is not None and hit[0] > now:
            return hit[1]
        if verifier is None:
            raise Unavailable("token verification is not ready: the gateway's public key is missing")
        claims = verifier.claims(token)  # raises Unauthorized
        try:
            sub = str(UUID(str(claims["sub"])))
            UUID(str(claims["fac"]))
            expires = float(claims["exp"])
        except (KeyError, ValueError, TypeError) as exc:
            raise Unauthorized("access token claims incomplete") from exc
        if len(self._subjects) >= self._max:
            self._subjects.clear()
        self._subjects[token] = (expires, sub)
        return sub


def caller_address(scope: Scope, trusted: tuple[str, ...]) -> str | None:
    """The caller's address: the peer, or what a trusted proxy in front of the gateway says it is."""
    if trusted:
        return client_address(scope, trusted)
    client = scope.get("client")
    return client[0] if client else None


def request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value.decode("latin-1")[:64] or os.urandom(16).hex()
    return os.urandom(16).hex()


def bearer(scope: Scope, *, allow_query: bool = False) -> str | None:
    """The bearer token from Authorization (or, for WebSockets, which browsers cannot give headers,
    from the ``access_token`` query parameter)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return str(token.strip())
    if allow_query:  # a WebSocket may also carry it as subprotocols ["bearer", <token>] (common/ws_auth.py)
        offered = [p.strip() for name, value in scope["headers"] if name == b"sec-websocket-protocol"
                   for p in value.decode("latin-1").split(",")]
        for i, proto in enumerate(offered):
            if proto.lower() == "bearer" and i + 1 < len(offered) and offered[i + 1]:
                return str(offered[i + 1])
            if proto.lower().startswith("bearer.") and len(proto) > len("bearer."):
                return str(proto[len("bearer."):])
    if allow_query and scope.get("query_string"):
        params = parse_qs(scope["query_string"].decode("latin-1"))
        for key in ("access_token", "token"):
            if params.get(key):
                return str(params[key][0])
    return None


def forward_headers(scope: Scope, rid: str, trusted: tuple[str, ...], *, websocket: bool = False) -> CIMultiDict[str]:
    """The caller's end-to-end headers plus X-Forwarded-For/-Proto/-Host and X-Request-ID."""
    headers = scope["headers"]
    drop = _HOP_BY_HOP
    for name, value in headers:
        if name == b"connection":  # headers named in Connection are hop-by-hop too
            drop = drop | {t.strip().lower().encode() for t in value.decode("latin-1").split(",")}
    peer = scope["client"][0] if scope.get("client") else ""
    believe = bool(trusted) and _peer_trusted(peer, trusted)
    out: CIMultiDict[str] = CIMultiDict()
    host = prior_for = prior_proto = prior_host = ""
    for name, value in headers:
        if name in drop or (websocket and name.startswith(b"sec-websocket-")):
            if name == b"host":
                host = value.decode("latin-1")
            continue
        if name in _FORWARDED:
            if believe:
                if name == b"x-forwarded-for":
                    prior_for = value.decode("latin-1")
                elif name == b"x-forwarded-proto":
                    prior_proto = value.decode("latin-1")
                elif name == b"x-forwarded-host":
                    prior_host = value.decode("latin-1")
            continue  # an untrusted caller's own X-Forwarded-* would let it pose as another address
        out.add(name.decode("latin-1"), value.decode("latin-1"))
    scheme = str(scope.get("scheme", "http"))
    out["X-Forwarded-For"] = f"{prior_for}, {peer}" if prior_for else peer
    out["X-Forwarded-Proto"] = prior_proto or {"ws": "http", "wss": "https"}.get(scheme) or scheme
    if prior_host or host:
        out["X-Forwarded-Host"] = prior_host or host
    out["X-Request-ID"] = rid
    return out


def upstream_url(spec: ServiceSpec, scope: Scope, *, websocket: bool = False) -> URL:
    base = spec.url
    if websocket:
        base = "ws" + base[4:] if base.startswith("http") else base
    raw = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    target = base.rstrip("/") + raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    return URL(target, encoded=True)


async def send_error(
    send: Send, status: int, code: str, detail: str, rid: str, headers: dict[str, str] | None = None
) -> None:
    body = orjson.dumps({"error": code, "detail": detail})
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", rid.encode()),
    ]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _peer_trusted(peer: str, trusted: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in trusted)
