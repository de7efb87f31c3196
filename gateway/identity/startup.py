"""The identity service's part of the gateway's start-up: signing key, verifier, authenticator."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

from fastapi import FastAPI

from common.app import build_token_verifier
from common.config import PlatformSettings
from common.db import Database
from gateway.identity import repository as repo
from gateway.identity.keys import ensure_keys
from gateway.identity.mfa import totp_seal
from gateway.identity.service import Authenticator
from gateway.identity.settings import identity_settings
from gateway.identity.tokens import TokenSigner

log = logging.getLogger("telehealth.identity")

# Expired refresh tokens are kept a while for forensics (reuse after expiry still shows in the table).
REFRESH_TOKEN_RETENTION = timedelta(days=30)


async def start_identity(app: FastAPI) -> None:
    """Load (or create) the signing key, make sure the gateway verifies what it signs, build the
    authenticator, and forget long-expired refresh tokens."""
    settings: PlatformSettings = app.state.settings
    ident = identity_settings()
    signer = TokenSigner.from_file(
        ensure_keys(settings.keys_dir),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=ident.access_token_seconds,
    )
    if getattr(app.state, "token_verifier", None) is None:
        app.state.token_verifier = build_token_verifier(settings)
    probe = signer.issue(
        user_id=UUID(int=0), username="startup-probe", roles=[], facility_id=UUID(int=0), serves=[], region_id=None
    )
    app.state.token_verifier.verify(probe.token)  # fails loudly when jwt_public.pem is not our key
    app.state.token_signer = signer
    app.state.authenticator = Authenticator(signer, app.state.redis, ident, totp_seal())
    db: Database = app.state.db
    async with db.transaction() as conn:
        purged = await repo.purge_refresh_tokens(conn, datetime.now(UTC) - REFRESH_TOKEN_RETENTION)
    log.info("identity ready", extra={"kid": signer.kid, "refresh_tokens_purged": purged})
