"""Authentication rules: password and refresh grants, the second factor, lockout, logout.

Functions take the caller's connection (the request owns the transaction) and return either a result or a
:class:`Refusal`. A refusal is *returned*, not raised, so the bookkeeping it carries (a counted failure, a
lock, a revoked token family, the audit entry) commits before the caller raises the refusal's error.

Answers of the token endpoint:

* 401 ``invalid_grant``: unknown user, wrong password, inactive account, or a bad refresh token; all alike.
* 401 ``mfa_required``: the password was right but the account needs a TOTP code and none was sent.
* 423 ``locked`` with ``Retry-After`` (seconds): after ``max_failed_attempts`` (5) consecutive failures
  (wrong password or wrong TOTP) the account is locked for ``lockout_seconds`` (15 min); the attempt that
  locks it already answers 423. Unknown usernames are counted the same way (in Redis), so the lockout
  does not reveal which usernames exist.

A TOTP code works once (RFC 6238 §5.2): the sign-in claims the code's time step in the same transaction,
and a code of that step or an earlier one is refused afterwards like a wrong code (401, counted).

Refresh tokens rotate on every use (7 days from the last use); presenting one that was already rotated
revokes its whole family (theft detection), with no grace period. A lockout does not end existing sessions
(it guards the password, and must not let a guesser sign the owner out); deactivation does.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common import audit
from common.auth import Principal
from common.errors import AppError, Unauthorized, Unavailable
from gateway.identity import facility_repository as facilities
from gateway.identity import repository as repo
from gateway.identity.context import RequestContext
from gateway.identity.mfa import SecretUnreadable, TotpSeal, matched_step
from gateway.identity.models import USERNAME_PATTERN, Me, TokenResponse, TokenUser, UserRecord
from gateway.identity.passwords import hash_password, needs_rehash, verify_password
from gateway.identity.settings import IdentitySettings
from gateway.identity.tokens import TokenSigner, deny_access_token, new_refresh_token, refresh_token_hash

log = logging.getLogger("telehealth.identity")

UNKNOWN_PREFIX = "th:auth:unknown-user:"
INVALID_CREDENTIALS = "the username or password is wrong"
INVALID_REFRESH = "the refresh token is invalid, expired or revoked"


class Locked(AppError):
    status, code = 423, "locked"

    def __init__(self, retry_after: int):
        super().__init__(
            "too many failed sign-in attempts: the account is locked for now; try again later",
            headers={"Retry-After": str(max(1, retry_after))},
        )


@dataclass(frozen=True)
class Refusal:
    """A refused grant: raise ``error`` after the transaction has committed."""

    error: AppError


def invalid_grant(detail: str = INVALID_CREDENTIALS) -> Unauthorized:
    return Unauthorized(detail, code="invalid_grant")


def principal_of(user: UserRecord) -> Principal:
    return Principal(user_id=user.id, username=user.username, roles=frozenset(user.roles), facility_id=user.facility_id)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Authenticator:
    """Issues and revokes the gateway's tokens."""

    def __init__(self, signer: TokenSigner, redis: Redis, settings: IdentitySettings, seal: TotpSeal):
        self.signer = signer
        self.redis = redis
        self.settings = settings
        self.seal = seal

    # -- grants --------------------------------------------------------------------------------------

    async def password_grant(
        self, conn: asyncpg.Connection, *, username: str, password: str, totp: str | None, ctx: RequestContext
    ) -> TokenResponse | Refusal:
        """``grant_type=password``: check the password, then the second factor, then issue tokens."""
        now = utcnow()
        name = username.strip().lower()
        user = await repo.user_for_login(conn, name) if USERNAME_PATTERN.match(name) else None
        if user is None or not user.active or not user.facility_active:
            await verify_password(None, password)  # as slow as a real check
            return await self._unknown_user(conn, name, "unknown_user" if user is None else "inactive", ctx)

        if user.locked_until is not None and user.locked_until > now:
            await verify_password(user.password_hash, password)
            retry = math.ceil((user.locked_until - now).total_seconds())
            await self._audit(conn, ctx, user, "auth.login", "denied", 423, reason="locked")
            return Refusal(Locked(retry))

        if not await verify_password(user.password_hash, password):
            return await self._failure(conn, user, now, ctx, action="auth.login", reason="bad_password")

        if user.needs_second_factor:
            if user.totp_secret is None:
                await self._audit(conn, ctx, user, "auth.mfa", "failure", 401, reason="not_enrolled")
                return Refusal(
                    Unauthorized(
                        "this account needs a TOTP authenticator; ask an administrator to enrol one",
                        code="mfa_not_enrolled",
                    )
                )
            if not totp:
                await self._audit(conn, ctx, user, "auth.mfa", "denied", 401, reason="mfa_required")
                return Refusal(
                    Unauthorized(
                        "this account needs the 6-digit code of its authenticator app (field `totp`)",
                        code="mfa_required",
                    )
                )
            step = matched_step(self._secret(user), totp)
            if step is None:
                return await self._failure(conn, user, now, ctx, action="auth.mfa", reason="bad_totp")
            if not await repo.claim_totp_step(conn, user.id, step):
                # RFC 6238 §5.2: an accepted code is never accepted again (nor one of an earlier step).
                # Answered and counted like a wrong code; the audit tells the two apart.
                return await self._failure(conn, user, now, ctx, action="auth.mfa", reason="totp_replay")

        if needs_rehash(user.password_hash):
            await repo.set_password_hash(conn, user.id, await hash_password(password), reset_lock=False)
        await repo.record_login(conn, user.id, now)
        family = uuid.uuid4()
        tokens = await self._issue(conn, user, family, now, ctx)
        await self._audit(
            conn, ctx, user, "auth.login", "success", 200, family=str(family), mfa=user.needs_second_factor
        )
        return tokens

    async def refresh_grant(
        self, conn: asyncpg.Connection, *, refresh_token: str, ctx: RequestContext
    ) -> TokenResponse | Refusal:
        """``grant_type=refresh_token``: rotate the token; reuse of a rotated one revokes its family."""
        now = utcnow()
        record = await repo.refresh_token_for_update(conn, refresh_token_hash(refresh_token))
        if record is None:
            await audit.write(
                conn,
                ctx.entry(
                    None, action="auth.refresh", outcome="failure", status=401, detail={"reason": "unknown_token"}
                ),
            )
            return Refusal(invalid_grant(INVALID_REFRESH))
        user = await repo.user_record(conn, record.user_id, for_update=True)
        assert user is not None  # refresh tokens cascade with their user
        family = str(record.family_id)
        if record.revoked_at is not None:
            await self._audit(conn, ctx, user, "auth.refresh", "failure", 401, reason="revoked", family=family)
            return Refusal(invalid_grant(INVALID_REFRESH))
        if record.rotated_at is not None:
            # Someone presents a token that was already exchanged: one of the two copies is stolen.
            revoked = await repo.revoke_family(conn, record.family_id, now, "reuse_detected")
            log.warning("refresh token reuse: family revoked", extra={"user_id": str(user.id), "family": family})
            await self._audit(conn, ctx, user, "auth.refresh.reuse", "denied", 401, family=family, revoked=revoked)
            return Refusal(invalid_grant(INVALID_REFRESH))
        if record.expires_at <= now:
            await self._audit(conn, ctx, user, "auth.refresh", "failure", 401, reason="expired", family=family)
            return Refusal(invalid_grant(INVALID_REFRESH))
        if not user.active or not user.facility_active:
            await repo.revoke_family(conn, record.family_id, now, "inactive")
            await self._audit(conn, ctx, user, "auth.refresh", "denied", 401, reason="inactive", family=family)
            return Refusal(invalid_grant(INVALID_REFRESH))
        await repo.mark_rotated(conn, record.id, now)
        tokens = await self._issue(conn, user, record.family_id, now, ctx)
        await self._audit(conn, ctx, user, "auth.refresh", "success", 200, family=family)
        return tokens

    # -- logout and the current user -----------------------------------------------------------------

    async def logout(
        self,
        conn: asyncpg.Connection,
        *,
        access_claims: dict[str, Any] | None,
        refresh_token: str | None,
        ctx: RequestContext,
    ) -> bool:
        """Revoke the refresh token's family and deny the access token until it expires.

        A refresh token of another user than the access token's is ignored. Returns False when there was
        nothing to log out (no valid access token and no known refresh token).
        """
        now = utcnow()
        user_id = UUID(access_claims["sub"]) if access_claims else None
        family: str | None = None
        if refresh_token:
            record = await repo.refresh_token_for_update(conn, refresh_token_hash(refresh_token))
            if record is not None and (user_id is None or record.user_id == user_id):
                await repo.revoke_family(conn, record.family_id, now, "logout")
                user_id, family = record.user_id, str(record.family_id)
        if user_id is None:
            return False
        if access_claims and access_claims.get("jti"):
            await deny_access_token(self.redis, str(access_claims["jti"]), int(access_claims["exp"]))
        user = await repo.user_record(conn, user_id)
        if user is None:
            return False
        await self._audit(
            conn, ctx, user, "auth.logout", "success", 204, family=family, access_token_denied=bool(access_claims)
        )
        return True

    async def me(self, conn: asyncpg.Connection, principal: Principal) -> Me:
        user = await repo.user_record(conn, principal.user_id)
        if user is None or not user.active:
            raise Unauthorized("this account no longer exists or is deactivated", code="invalid_token")
        return Me(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            roles=sorted(user.roles),
            facility=user.facility,
            serves=await facilities.serves(conn, user.facility_id),
            region_id=await facilities.region_of(conn, user.facility_id),
            mfa_enrolled=user.totp_secret is not None,
        )

    # -- internals -----------------------------------------------------------------------------------

    async def _issue(
        self, conn: asyncpg.Connection, user: UserRecord, family: UUID, now: datetime, ctx: RequestContext
    ) -> TokenResponse:
        access = self.signer.issue(
            user_id=user.id,
            username=user.username,
            display_name=user.display_name,
            roles=user.roles,
            facility_id=user.facility_id,
            serves=await facilities.serves(conn, user.facility_id),
            region_id=await facilities.region_of(conn, user.facility_id),
            now=int(now.timestamp()),
        )
        refresh = new_refresh_token()
        await repo.insert_refresh_token(
            conn,
            token_id=uuid.uuid4(),
            user_id=user.id,
            family_id=family,
            token_hash=refresh_token_hash(refresh),
            expires_at=now + timedelta(seconds=self.settings.refresh_token_seconds),
            user_agent=ctx.user_agent,
            client_addr=ctx.client_addr,
        )
        return TokenResponse(
            access_token=access.token,
            expires_in=access.expires_in,
            refresh_token=refresh,
            user=TokenUser(
                id=user.id,
                username=user.username,
                display_name=user.display_name,
                roles=sorted(user.roles),
                facility=user.facility,
            ),
        )

    async def _failure(
        self,
        conn: asyncpg.Connection,
        user: UserRecord,
        now: datetime,
        ctx: RequestContext,
        *,
        action: str,
        reason: str,
    ) -> Refusal:
        attempts = user.failed_attempts + 1
        if attempts >= self.settings.max_failed_attempts:
            until = now + timedelta(seconds=self.settings.lockout_seconds)
            await repo.record_failure(conn, user.id, failed_attempts=0, locked_until=until)
            await self._audit(conn, ctx, user, action, "failure", 423, reason=reason, attempts=attempts)
            await self._audit(conn, ctx, user, "auth.lockout", "success", 423, until=until.isoformat())
            return Refusal(Locked(self.settings.lockout_seconds))
        await repo.record_failure(conn, user.id, failed_attempts=attempts, locked_until=None)
        await self._audit(conn, ctx, user, action, "failure", 401, reason=reason, attempts=attempts)
        if reason in ("bad_totp", "totp_replay"):
            return Refusal(Unauthorized("the authenticator code is wrong or expired", code="invalid_grant"))
        return Refusal(invalid_grant())

    async def _unknown_user(self, conn: asyncpg.Connection, name: str, reason: str, ctx: RequestContext) -> Refusal:
        """Count failures of names without a usable account like a real account's, in Redis."""
        attempts, retry = 0, 0
        key = UNKNOWN_PREFIX + hashlib.sha256(name.encode()).hexdigest()
        try:
            attempts = int(await self.redis.incr(key))
            if attempts == 1 or attempts == self.settings.max_failed_attempts:
                await self.redis.expire(key, self.settings.lockout_seconds)
            retry = int(await self.redis.ttl(key))
        except RedisError:
            log.warning("redis unavailable: unknown-user attempts not counted")
        locked = attempts >= self.settings.max_failed_attempts
        status = 423 if locked else 401
        shown = name if USERNAME_PATTERN.match(name) else None
        await audit.write(
            conn,
            ctx.entry(
                None,
                action="auth.login",
                outcome="failure",
                status=status,
                detail={"reason": reason, "attempted_username": shown},
            ),
        )
        return Refusal(Locked(retry if retry > 0 else self.settings.lockout_seconds) if locked else invalid_grant())

    def _secret(self, user: UserRecord) -> str:
        assert user.totp_secret is not None
        try:
            return self.seal.open(user.id, user.totp_secret)
        except SecretUnreadable as exc:
            log.error("TOTP secret unreadable: wrong IDENTITY_TOTP_KEY or totp.key?", extra={"user_id": str(user.id)})
            raise Unavailable("the second factor cannot be checked right now", retry_after=30) from exc

    async def _audit(
        self,
        conn: asyncpg.Connection,
        ctx: RequestContext,
        user: UserRecord,
        action: str,
        outcome: str,
        status: int,
        **detail: Any,
    ) -> None:
        detail = {k: v for k, v in detail.items() if v is not None}
        await audit.write(
            conn,
            ctx.entry(
                principal_of(user),
                action=action,
                outcome=outcome,
                status=status,
                object_type="user",
                object_id=user.id,
                detail=detail,
            ),
        )
