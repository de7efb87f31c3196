"""Rate limits: the sliding-window script against the session's real Redis, and 429s from a real gateway."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from gateway.ratelimit import RateLimiter, RateLimitSettings
from infra.local.stack import free_port
from tests.gateway.proxy_support import GatewayProcess, dead_url, gateway_key, gateway_process, mint


def redis_url(client: aioredis.Redis) -> str:
    kw = client.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/{kw.get('db', 0)}"


def _settings(**kw: Any) -> RateLimitSettings:
    return RateLimitSettings(rate_key_prefix=f"rl-test-{uuid.uuid4().hex[:8]}", **kw)


@pytest_asyncio.fixture(loop_scope="session")
async def redis(stack: Any) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(stack.redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["pipelined", "redis-py"])
def limiter_url(request: pytest.FixtureRequest, stack: Any) -> str | None:
    """Both ways of running the script: the gateway's pipelined connection, and redis-py's pool."""
    return str(stack.redis_url) if request.param == "pipelined" else None


async def test_user_limit_counts_per_user(redis: aioredis.Redis, limiter_url: str | None) -> None:
    limiter = RateLimiter(redis, _settings(rate_user_limit=5, rate_address_limit=1000), url=limiter_url)
    for _ in range(5):
        assert (await limiter.check_request("u1", "10.0.0.1")).allowed
    refused = await limiter.check_request("u1", "10.0.0.1")
    assert not refused.allowed and refused.subject == "user"
    assert 1 <= refused.retry_after <= 60
    assert (await limiter.check_request("u2", "10.0.0.1")).allowed  # another user behind the same address


async def test_address_limit_counts_every_user_behind_it(redis: aioredis.Redis, limiter_url: str | None) -> None:
    limiter = RateLimiter(redis, _settings(rate_user_limit=1000, rate_address_limit=3), url=limiter_url)
    for n in range(3):
        assert (await limiter.check_request(f"user-{n}", "10.0.0.2")).allowed
    refused = await limiter.check_request("user-9", "10.0.0.2")
    assert not refused.allowed and refused.subject == "address"
    assert (await limiter.check_request("user-9", "10.0.0.3")).allowed


async def test_refused_requests_are_not_counted(redis: aioredis.Redis, limiter_url: str | None) -> None:
    settings = _settings(rate_user_limit=2, rate_address_limit=1000)
    limiter = RateLimiter(redis, settings, url=limiter_url)
    for _ in range(2):
        assert (await limiter.check_request("u", "a")).allowed
    for _ in range(5):
        assert not (await limiter.check_request("u", "a")).allowed
    keys = [k async for k in redis.scan_iter(f"{settings.rate_key_prefix}:u:u:*")]
    counts = [int(await redis.get(k) or 0) for k in keys]
    assert sum(counts) == 2


async def test_window_slides_instead_of_resetting(redis: aioredis.Redis) -> None:
    """Right after a window boundary the previous window still weighs almost fully (no burst of 2x)."""
    limiter = RateLimiter(redis, _settings(rate_user_limit=4, rate_window_seconds=2), url=str(redis_url(redis)))
    seconds, micros = await redis.time()
    now_ms = seconds * 1000 + micros // 1000
    into = now_ms % 2000
    if into > 300:  # start near the beginning of a window, so the next boundary is ~2 s away
        await asyncio.sleep((2000 - into + 50) / 1000)
    for _ in range(4):
        assert (await limiter.check_request("slide", None)).allowed
    seconds, micros = await redis.time()
    into = (seconds * 1000 + micros // 1000) % 2000
    await asyncio.sleep((2000 - into + 100) / 1000)  # just past the boundary
    refused = await limiter.check_request("slide", None)
    assert not refused.allowed, "a fixed window would have reset here"
    await asyncio.sleep(2.1)  # a whole window later the old requests no longer count
    assert (await limiter.check_request("slide", None)).allowed


async def test_login_limit_is_its_own(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis, _settings(rate_login_limit=2))
    assert (await limiter.check_login("10.1.1.1")).allowed
    assert (await limiter.check_login("10.1.1.1")).allowed
    refused = await limiter.check_login("10.1.1.1")
    assert not refused.allowed and refused.subject == "login"
    assert (await limiter.check_request(None, "10.1.1.1")).allowed


async def test_refresh_limit_is_apart_from_the_login_limit(redis: aioredis.Redis, limiter_url: str | None) -> None:
    limiter = RateLimiter(redis, _settings(rate_login_limit=2, rate_refresh_limit=4), url=limiter_url)
    for _ in range(4):
        assert (await limiter.check_refresh("10.1.2.1")).allowed
    refused = await limiter.check_refresh("10.1.2.1")
    assert not refused.allowed and refused.subject == "refresh" and 1 <= refused.retry_after <= 300
    # the refreshes used none of the login limit, and sign-ins use none of the refresh limit
    assert (await limiter.check_login("10.1.2.1")).allowed
    assert (await limiter.check_login("10.1.2.1")).allowed
    assert (await limiter.check_login("10.1.2.1")).subject == "login"
    assert (await limiter.check_refresh("10.1.2.2")).allowed  # another address has its own
    assert (await limiter.check_refresh(None)).allowed


def _receiver(messages: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    """An ASGI receive over ``messages`` (then disconnects), and the list of what it handed out."""
    given: list[dict[str, Any]] = []
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        message = queue.pop(0) if queue else {"type": "http.disconnect"}
        given.append(message)
        return message

    return receive, given


def _token_scope(
    content_type: str | None = "application/x-www-form-urlencoded", length: int | None = None, method: str = "POST"
) -> dict[str, Any]:
    headers = []
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": method, "path": "/auth/token", "headers": headers}


@pytest.mark.parametrize(
    ("chunks", "content_type", "expected"),
    [
        ([b"grant_type=refresh_token&refresh_token=abc"], "application/x-www-form-urlencoded", True),
        (
            [b"refresh_token=abc&grant", b"_type=refresh%5Ftoken"],
            "application/x-www-form-urlencoded; charset=utf-8",
            True,
        ),
        ([b"grant_type=password&username=a&password=b"], "application/x-www-form-urlencoded", False),
        ([b"grant_type=refresh_token&grant_type=password"], "application/x-www-form-urlencoded", False),
        ([b"grant_type=refresh_token&x=1;grant_type=password"], "application/x-www-form-urlencoded", False),
        ([b"refresh_token=abc"], "application/x-www-form-urlencoded", False),
        ([b'{"grant_type": "refresh_token"}'], "application/json", False),
        ([b"grant_type=refresh_token"], None, False),
    ],
)
async def test_token_requests_count_as_refreshes_only_when_plainly_one(
    chunks: list[bytes], content_type: str | None, expected: bool
) -> None:
    """The edge reads the token endpoint's form to pick the limit, and hands the app every byte it read."""
    from gateway.proxy import refresh_grant_only

    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    receive, _ = _receiver(messages)
    refresh, passed = await refresh_grant_only(_token_scope(content_type), receive)
    assert refresh is expected
    replayed = [await passed() for _ in chunks]
    assert b"".join(m["body"] for m in replayed) == b"".join(chunks)
    assert (await passed())["type"] == "http.disconnect"  # then the caller's own receive again


async def test_big_or_odd_token_requests_count_as_sign_ins_and_stream_on() -> None:
    from gateway.proxy import TOKEN_PEEK_BYTES, refresh_grant_only

    # a declared size over the peek limit: nothing is read at all
    receive, given = _receiver([{"type": "http.request", "body": b"x", "more_body": False}])
    refresh, passed = await refresh_grant_only(_token_scope(length=TOKEN_PEEK_BYTES + 1), receive)
    assert refresh is False and passed is receive and given == []
    # a streamed body that grows past it: read up to the limit, then everything passes on in order
    part = b"grant_type=refresh_token&pad=" + b"x" * 4096
    chunks = [{"type": "http.request", "body": part, "more_body": True} for _ in range(8)]
    receive, given = _receiver([*chunks, {"type": "http.request", "body": b"", "more_body": False}])
    refresh, passed = await refresh_grant_only(_token_scope(), receive)
    assert refresh is False and 0 < len(given) < 8
    assert [await passed() for _ in range(9)] == [*chunks, {"type": "http.request", "body": b"", "more_body": False}]
    # not a POST, or the caller left while the body was read
    receive, given = _receiver([])
    assert (await refresh_grant_only(_token_scope(method="GET"), receive))[0] is False and given == []
    refresh, passed = await refresh_grant_only(_token_scope(), receive)
    assert refresh is False and (await passed())["type"] == "http.disconnect"


async def test_unreachable_redis_lets_requests_through(limiter_url: str | None) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = aioredis.from_url(dead, socket_connect_timeout=0.5)
    try:
        limiter = RateLimiter(client, _settings(rate_user_limit=1), url=dead if limiter_url else None)
        decision = await limiter.check_request("u", "a")
    finally:
        await client.aclose()
    assert decision.allowed


async def test_pipelined_checks_share_one_connection_in_order(redis: aioredis.Redis, stack: Any) -> None:
    limiter = RateLimiter(redis, _settings(rate_user_limit=50, rate_address_limit=10**6), url=stack.redis_url)
    decisions = await asyncio.gather(*(limiter.check_request("burst", f"10.2.0.{n % 7}") for n in range(80)))
    assert sum(d.allowed for d in decisions) == 50
    assert all(d.subject == "user" for d in decisions if not d.allowed)
    limiter.close()
    assert (await limiter.check_request("after-close", None)).allowed  # reconnects by itself


# -- through the gateway -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited_gw(stack: Any) -> Iterator[GatewayProcess]:
    env = {
        "IMAGING_URL": dead_url(),
        "GATEWAY_RATE_USER_LIMIT": "5",
        "GATEWAY_RATE_ADDRESS_LIMIT": "12",
        "GATEWAY_RATE_LOGIN_LIMIT": "3",
        "GATEWAY_RATE_REFRESH_LIMIT": "5",
        # X-Forwarded-For from loopback is believed, so a test can stand for callers at other addresses
        "GATEWAY_TRUSTED_PROXIES": "127.0.0.1/32",
        "GATEWAY_RATE_KEY_PREFIX": f"rl-{uuid.uuid4().hex[:8]}",
    }
    with gateway_process(env, stack.var_dir / "logs", "gateway-ratelimit", ("--no-proxy-headers",)) as gw:
        yield gw


def test_gateway_answers_429_per_user_then_per_address(limited_gw: GatewayProcess, stack: Any) -> None:
    key = gateway_key(stack.var_dir)
    first = mint(key)
    statuses = [
        httpx.get(f"{limited_gw.url}/api/imaging/studies", headers={"Authorization": f"Bearer {first}"}).status_code
        for _ in range(6)
    ]
    assert statuses[:5] == [503] * 5  # counted, then forwarded to a service that is down
    r = httpx.get(f"{limited_gw.url}/api/imaging/studies", headers={"Authorization": f"Bearer {first}"})
    assert r.status_code == 429
    assert r.json()["error"] == "rate_limited" and "account" in r.json()["detail"]
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # other users from the same address: 12 per window for the address, 5 already used by the first user
    others = [mint(key) for _ in range(8)]
    answers = [
        httpx.get(f"{limited_gw.url}/api/imaging/studies", headers={"Authorization": f"Bearer {t}"}).status_code
        for t in others
    ]
    assert answers[:7] == [503] * 7 and answers[7] == 429


def test_login_has_a_stricter_per_address_limit(limited_gw: GatewayProcess) -> None:
    form = {"grant_type": "password", "username": "nobody", "password": "wrong"}
    answers = [httpx.post(f"{limited_gw.url}/auth/token", data=form).status_code for _ in range(4)]
    assert all(400 <= s < 500 and s != 429 for s in answers[:3]), answers
    assert answers[3] == 429
    r = httpx.post(f"{limited_gw.url}/auth/token", data=form)
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert "login" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1


def test_refresh_grants_have_their_own_limit(limited_gw: GatewayProcess) -> None:
    """A township centre behind one NAT address: its tabs refreshing sessions do not use up the sign-in
    limit (3 here), and have a looser limit of their own (5 here). Nothing dressed up as a refresh gets
    out of the sign-in limit."""
    url = f"{limited_gw.url}/auth/token"
    nat = {"X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"}
    refresh = {"grant_type": "refresh_token", "refresh_token": "not-a-token-" + uuid.uuid4().hex}
    sign_in = {"grant_type": "password", "username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "wrong"}

    refreshes = [httpx.post(url, data=refresh, headers=nat) for _ in range(5)]
    # the edge read the form to count it, and the app still got all of it
    assert [(r.status_code, r.json()["error"]) for r in refreshes] == [(401, "invalid_grant")] * 5
    sign_ins = [httpx.post(url, data=sign_in, headers=nat).status_code for _ in range(4)]
    assert all(400 <= s < 500 and s != 429 for s in sign_ins[:3]) and sign_ins[3] == 429, sign_ins
    over = httpx.post(url, data=refresh, headers=nat)
    assert over.status_code == 429 and "refreshes" in over.json()["detail"]
    assert 1 <= int(over.headers["retry-after"]) <= 300

    form = {"Content-Type": "application/x-www-form-urlencoded", **nat}
    for dressed_up in (
        httpx.post(url, content=b"grant_type=refresh_token&grant_type=password&username=a&password=b", headers=form),
        httpx.post(url, content=b"grant_type=refresh_token&u=1;grant_type=password", headers=form),
        httpx.post(url, json={**refresh}, headers=nat),
        httpx.post(url, files={"grant_type": (None, "refresh_token")}, headers=nat),
    ):
        assert dressed_up.status_code == 429 and "login" in dressed_up.json()["detail"], dressed_up.text

    elsewhere = {"X-Forwarded-For": "192.0.2.55"}  # another centre is counted on its own
    assert httpx.post(url, data=refresh, headers=elsewhere).status_code == 401
