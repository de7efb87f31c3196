"""Rate limits at the gateway, kept in Redis: per user (the token's ``sub``) and per client address.

A sliding-window counter (the current fixed window plus the previous one weighted by how much of it still
overlaps the sliding window) in one Lua script: one round trip checks every key of a request and counts
the request only when all keys allow it. The script reads Redis's clock, so several gateways share one
window. Password grants of the token endpoint have their own, stricter per-address limit (guessing); its
refresh grants have another, looser one: every open tab of a township centre behind one NAT address
refreshes its session, and a refresh token (256 random bits) cannot be guessed.

When Redis is unreachable the limiter lets requests through (and says so in the log): it protects the
platform, it must not take it down; ``/readyz`` reports Redis as down meanwhile.

The check runs on every proxied request, so it has its own Redis connection: ``PipelinedScript`` writes
EVALSHA commands back to back on one socket and matches replies in order, parsed by hiredis (Redis's own C
parser). Measured (bench/results/gateway.md): about 20 µs of CPU per check against 50–90 µs through
redis-py's pool, with or without hiredis. TLS or socket URLs fall back to redis-py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
import redis.asyncio as aioredis
from pydantic_settings import SettingsConfigDict
from redis.exceptions import RedisError

from common.config import ServiceSettings

log = logging.getLogger("telehealth.ratelimit")

LOGIN_PATH = "/auth/token"


class RateLimitSettings(ServiceSettings):
    """Limits, from ``GATEWAY_RATE_*``. A township centre's staff often share one NAT address, and a
    DICOM viewer fetches hundreds of frames a minute: the per-address limit is the looser one."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", case_sensitive=False)

    rate_limit_enabled: bool = True
    rate_window_seconds: int = 60
    rate_user_limit: int = 3000
    rate_address_limit: int = 12000
    rate_login_window_seconds: int = 300
    rate_login_limit: int = 20  # password grants (and anything at the token endpoint that is not a refresh)
    rate_refresh_window_seconds: int = 300
    rate_refresh_limit: int = 600  # refresh-token grants
    rate_key_prefix: str = "rl"


# KEYS: one base key per limited subject. ARGV[1]: window in ms, ARGV[1+i]: the limit of KEYS[i].
# Returns {allowed (1|0), retry_after_ms, index of the refusing key (0 when allowed)}.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local cur = math.floor(now / window)
local into = now - cur * window
local weight = (window - into) / window
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  local c = tonumber(redis.call('GET', key .. ':' .. cur) or '0')
  local p = tonumber(redis.call('GET', key .. ':' .. (cur - 1)) or '0')
  if p * weight + c + 1 > limit then
    local wait = window - into
    if c + 1 <= limit and p > 0 then
      -- the previous window's share falls below the limit before this window ends
      local needed = 1 - (limit - c - 1) / p
      wait = math.max(1, math.ceil(needed * window - into))
    end
    return {0, wait, i}
  end
end
for i, key in ipairs(KEYS) do
  local k = key .. ':' .. cur
  redis.call('INCR', k)
  redis.call('PEXPIRE', k, window * 2)
end
return {1, 0, 0}
"""


class _Replies(asyncio.Protocol):
    """One Redis connection: replies are handed to waiting futures in the order commands were written."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.reader = hiredis.Reader()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future = self.waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError("redis connection lost"))

    def send(self, *args: str | int | bytes) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        assert self.transport is not None
        self.transport.write(hiredis.pack_command(args))  # type: ignore[arg-type]
        return future


class PipelinedScript:
    """Runs one Lua script over a dedicated, pipelined connection (``redis://`` URLs only)."""

    def __init__(self, url: str, script: str, timeout: float = 1.0):
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._db = int(parts.path.strip("/") or 0)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._script = script
        self._sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
        self._timeout = timeout
        self._conn: _Replies | None = None
        self._lock = asyncio.Lock()

    @staticmethod
    def supports(url: str) -> bool:
        return urlsplit(url).scheme == "redis"

    async def _connection(self) -> _Replies:
        conn = self._conn
        if conn is not None and not conn.lost:
            return conn
        async with self._lock:
            if self._conn is None or self._conn.lost:
                loop = asyncio.get_running_loop()
                _, fresh = await asyncio.wait_for(
                    loop.create_connection(_Replies, self._host, self._port), self._timeout
                )
                setup = []
                if self._password is not None:
                    auth = (self._user, self._password) if self._user else (self._password,)
                    setup.append(fresh.send("AUTH", *auth))
                if self._db:
                    setup.append(fresh.send("SELECT", self._db))
                for reply in await asyncio.wait_for(asyncio.gather(*setup), self._timeout):
                    if isinstance(reply, hiredis.ReplyError):
                        fresh.transport.close()  # type: ignore[union-attr]
                        raise ConnectionError(f"redis refused the connection: {reply}")
                self._conn = fresh
            return self._conn

    async def __call__(self, keys: list[str], args: list[int]) -> Any:
        conn = await self._connection()
        async with asyncio.timeout(self._timeout):
            reply = await conn.send("EVALSHA", self._sha, len(keys), *keys, *args)
            if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
                reply = await conn.send("EVAL", self._script, len(keys), *keys, *args)
        if isinstance(reply, hiredis.ReplyError):
            raise ConnectionError(f"redis: {reply}")
        return reply

    def close(self) -> None:
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.close()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0  # seconds, rounded up
    subject: str = ""  # "user", "address", "login" or "refresh" when refused


class RateLimiter:
    """Checks and counts requests against the configured limits (one Redis round trip per check)."""

    def __init__(self, redis: aioredis.Redis, settings: RateLimitSettings | None = None, *, url: str | None = None):
        self.settings = settings or RateLimitSettings()
        self._pipelined = PipelinedScript(url, _SLIDING_WINDOW) if url and PipelinedScript.supports(url) else None
        self._script = redis.register_script(_SLIDING_WINDOW)
        self._warned_at = 0.0

    def close(self) -> None:
        if self._pipelined is not None:
            self._pipelined.close()

    @property
    def enabled(self) -> bool:
        return self.settings.rate_limit_enabled

    async def check_request(self, user_id: str | None, address: str | None) -> Decision:
        """Count one API request of ``user_id`` (if authenticated) from ``address``."""
        s = self.settings
        subjects: list[tuple[str, str, int]] = []
        if user_id:
            subjects.append(("user", f"{s.rate_key_prefix}:u:{user_id}", s.rate_user_limit))
        if address:
            subjects.append(("address", f"{s.rate_key_prefix}:a:{address}", s.rate_address_limit))
        return await self._check(subjects, s.rate_window_seconds)

    async def check_login(self, address: str | None) -> Decision:
        """Count one sign-in attempt (password grant) from ``address`` against the stricter login limit."""
        s = self.settings
        if not address:
            return Decision(True)
        return await self._check(
            [("login", f"{s.rate_key_prefix}:l:{address}", s.rate_login_limit)], s.rate_login_window_seconds
        )

    async def check_refresh(self, address: str | None) -> Decision:
        """Count one refresh-token grant from ``address`` against the refresh limit (not the login one)."""
        s = self.settings
        if not address:
            return Decision(True)
        return await self._check(
            [("refresh", f"{s.rate_key_prefix}:r:{address}", s.rate_refresh_limit)], s.rate_refresh_window_seconds
        )

    async def _check(self, subjects: list[tuple[str, str, int]], window_seconds: int) -> Decision:
        if not subjects or not self.enabled:
            return Decision(True)
        try:
            keys = [key for _, key, _ in subjects]
            args = [window_seconds * 1000, *(limit for _, _, limit in subjects)]
            if self._pipelined is not None:
                allowed, wait_ms, index = await self._pipelined(keys, args)
            else:
                allowed, wait_ms, index = await self._script(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            now = time.monotonic()
            if now - self._warned_at > 10:
                self._warned_at = now
                log.warning(
                    "rate limiter unavailable; letting requests through", extra={"error_type": type(exc).__name__}
                )
            return Decision(True)
        if int(allowed) == 1:
            return Decision(True)
        return Decision(False, retry_after=max(1, -(-int(wait_ms) // 1000)), subject=subjects[int(index) - 1][0])
