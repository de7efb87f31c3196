"""FastAPI dependencies of the gateway's own routes: the caller, checked against the logout deny-list."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from common.auth import Principal, Role, current_principal
from common.db import Database
from common.errors import Forbidden, Unauthorized, Unavailable
from gateway.identity.service import Authenticator
from gateway.identity.tokens import is_access_token_denied

# Only documents the scheme in OpenAPI ("Authorize" in /docs); verification is current_principal's.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def gateway_principal(request: Request, _: str | None = Depends(oauth2_scheme)) -> Principal:
    """The verified caller whose access token has not been logged out."""
    principal = current_principal(request)
    if await is_access_token_denied(request.app.state.redis, principal.token_id):
        raise Unauthorized("this access token was revoked (logged out)", code="token_revoked")
    return principal


def gateway_roles(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: a live gateway principal holding one of ``roles``."""
    wanted = frozenset(roles)

    async def dependency(principal: Principal = Depends(gateway_principal)) -> Principal:
        if not principal.roles.intersection(wanted):
            raise Forbidden(f"this action needs one of the roles: {', '.join(sorted(wanted))}")
        return principal

    return dependency


require_admin = gateway_roles(Role.PLATFORM_ADMIN, Role.FACILITY_ADMIN)
require_platform_admin = gateway_roles(Role.PLATFORM_ADMIN)


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def authenticator(request: Request) -> Authenticator:
    found = getattr(request.app.state, "authenticator", None)
    if not isinstance(found, Authenticator):
        raise Unavailable("the identity service is starting; retry shortly")
    return found
