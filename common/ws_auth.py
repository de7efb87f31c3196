"""Who is on the other end of a WebSocket: the bearer token (browsers cannot set headers on a WebSocket, so also
the ``access_token`` query parameter or a ``bearer`` subprotocol), verified with the app's token verifier, and
a refusal in the platform's error shape. Used by every service socket (ECG alerts, consult chat and signaling).
"""

from __future__ import annotations

from fastapi import WebSocket
from fastapi.responses import JSONResponse

from common.auth import Principal, TokenVerifier
from common.errors import AppError, Unauthorized, error_body


def websocket_token(ws: WebSocket) -> tuple[str | None, str | None]:
    """(token, subprotocol to echo): ``access_token`` query, Authorization header, or the subprotocols
    ``["bearer", <token>]`` / ``"bearer.<token>"`` (browsers cannot set headers on a WebSocket)."""
    offered = list(ws.scope.get("subprotocols") or [])
    for i, proto in enumerate(offered):
        if proto.lower() == "bearer" and i + 1 < len(offered):
            return offered[i + 1], proto
        if proto.lower().startswith("bearer."):
            return proto[len("bearer."):], proto
    header = ws.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), None
    return ws.query_params.get("access_token") or None, None


def authenticate_websocket(ws: WebSocket) -> tuple[Principal, str | None]:
    """(principal, subprotocol to accept with) of the socket's caller; Unauthorized without a valid token."""
    token, subprotocol = websocket_token(ws)
    verifier: TokenVerifier | None = getattr(ws.app.state, "token_verifier", None)
    if not token or verifier is None:
        raise Unauthorized("a bearer access token is required (access_token query parameter or subprotocol)")
    return verifier.verify(token), subprotocol


async def deny_websocket(ws: WebSocket, exc: AppError) -> None:
    """Refuse the handshake with the error's status and body (or a policy close where the server cannot)."""
    try:
        await ws.send_denial_response(JSONResponse(error_body(exc.code, exc.detail), status_code=exc.status))
    except RuntimeError:  # the server has no denial-response extension: a policy close says as much
        await ws.close(code={401: 4401, 403: 4403, 404: 4404}.get(exc.status, 1008), reason=exc.detail[:120])
