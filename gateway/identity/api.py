"""HTTP of sign-in: OAuth2 token endpoint (password and refresh grants), logout, the current user, JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import JSONResponse

from common.auth import Principal, TokenVerifier, bearer_token
from common.db import Database
from common.errors import BadRequest, Unauthorized, Unavailable
from gateway.identity.context import RequestContext
from gateway.identity.deps import authenticator, database, gateway_principal
from gateway.identity.models import LogoutRequest, Me, TokenResponse
from gateway.identity.service import Authenticator, Refusal

router = APIRouter(tags=["identity"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "`invalid_request` or `unsupported_grant_type`"},
    401: {"description": "`invalid_grant` (wrong credentials or refresh token) or `mfa_required`"},
    423: {"description": "`locked`: too many failures; `Retry-After` says for how many seconds"},
    429: {
        "description": "`rate_limited` per client address, with `Retry-After`: password grants have a strict "
        "limit (`GATEWAY_RATE_LOGIN_LIMIT`), refresh grants a looser one of their own (`GATEWAY_RATE_REFRESH_LIMIT`)"
    },
}


@router.post("/auth/token", response_model=TokenResponse, responses=_ERRORS)
async def issue_token(
    request: Request,
    response: Response,
    grant_type: str = Form("", description="`password` or `refresh_token`"),
    username: str = Form("", max_length=200),
    password: str = Form("", max_length=1024),
    totp: str | None = Form(None, max_length=16, description="6-digit code; required for administrators"),
    refresh_token: str = Form("", max_length=200),
    scope: str = Form("", description="ignored: the roles decide what a token may do"),
    auth: Authenticator = Depends(authenticator),
    db: Database = Depends(database),
) -> TokenResponse:
    """OAuth2 token endpoint (form-encoded, RFC 6749 §4.3 and §6).

    `grant_type=password` with `username`, `password` and, for facility and platform administrators, `totp`;
    `grant_type=refresh_token` with `refresh_token`. Answers a 15-minute EdDSA access token and a 7-day
    rotating refresh token. A TOTP code signs in once: a code that was accepted, or one of an earlier 30-s
    step, is refused like a wrong code. Failures: 401 `invalid_grant` or `mfa_required`; 423 `locked` with
    `Retry-After` after 5 consecutive failures (15 minutes).
    """
    ctx = RequestContext.of(request)
    result: TokenResponse | Refusal
    if grant_type == "password":
        if not username or not password:
            raise BadRequest("username and password are required", code="invalid_request")
        async with db.transaction() as conn:
            result = await auth.password_grant(conn, username=username, password=password, totp=totp, ctx=ctx)
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise BadRequest("refresh_token is required", code="invalid_request")
        async with db.transaction() as conn:
            result = await auth.refresh_grant(conn, refresh_token=refresh_token, ctx=ctx)
    elif not grant_type:
        raise BadRequest("grant_type is required (form-encoded body)", code="invalid_request")
    else:
        raise BadRequest("grant_type must be password or refresh_token", code="unsupported_grant_type")
    if isinstance(result, Refusal):
        result.error.headers.update(NO_STORE)
        raise result.error
    response.headers.update(NO_STORE)
    return result


@router.post("/auth/logout", status_code=204, response_class=Response)
async def logout(
    request: Request,
    body: LogoutRequest | None = None,
    auth: Authenticator = Depends(authenticator),
    db: Database = Depends(database),
) -> Response:
    """Sign out: revokes the given refresh token's whole family and denies the bearer access token until
    it expires. Either credential alone is enough (an expired access token is ignored)."""
    claims = _claims_if_valid(request)
    async with db.transaction() as conn:
        done = await auth.logout(
            conn,
            access_claims=claims,
            refresh_token=body.refresh_token if body else None,
            ctx=RequestContext.of(request),
        )
    if not done:
        raise Unauthorized("nothing to sign out: send a valid access token or refresh token")
    return Response(status_code=204)


@router.get("/auth/me", response_model=Me)
async def me(
    principal: Principal = Depends(gateway_principal),
    auth: Authenticator = Depends(authenticator),
    db: Database = Depends(database),
) -> Me:
    """The signed-in user as of now: roles, facility, the facilities it reads for, its region."""
    async with db.transaction(principal) as conn:
        return await auth.me(conn, principal)


@router.get("/.well-known/jwks.json")
async def jwks(auth: Authenticator = Depends(authenticator)) -> JSONResponse:
    """The public key(s) access tokens are signed with (JWK Set, RFC 7517; OKP Ed25519)."""
    return JSONResponse(auth.signer.jwks(), headers={"Cache-Control": "public, max-age=300"})


def _claims_if_valid(request: Request) -> dict[str, Any] | None:
    token = bearer_token(request)
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if token is None:
        return None
    if verifier is None:
        raise Unavailable("token verification is not ready")
    try:
        return verifier.claims(token)
    except Unauthorized:
        return None
