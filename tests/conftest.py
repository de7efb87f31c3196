"""Shared test harness: a private PostgreSQL + Redis for the session, the migrated schema, the demo region,
and the whole platform (gateway + five services) as real uvicorn processes on free loopback ports.

Everything runs on this machine; nothing is mocked. Tests build their own data through the APIs and use
unique names, so they leave nothing that another test depends on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from infra.local.stack import Postgres, Redis, free_port

REPO = Path(__file__).resolve().parent.parent
pytest_plugins: list[str] = []
for _plugin in ("tests.fixtures.s3", "tests.fixtures.celery"):
    if (REPO / (_plugin.replace(".", "/") + ".py")).exists():
        pytest_plugins.append(_plugin)


@dataclass
class Stack:
    var_dir: Path
    database_url: str
    redis_url: str
    postgres: Postgres
    redis: Redis
    env: dict[str, str] = field(default_factory=dict)

    @property
    def app_database_url(self) -> str:
        from common.config import platform_settings

        return platform_settings().application_dsn()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Private PostgreSQL and Redis, migrated, with the gateway's signing keys, for this session."""
    base = Path(tempfile.mkdtemp(prefix="th-test-"))
    os.chmod(base, 0o755)
    pg = Postgres(base / "pg").start()
    rd = Redis(base / "redis", persist=False).start()
    env = {
        "TH_ENV": "test",
        "TH_VAR_DIR": str(base / "var"),
        "DATABASE_URL": pg.url(),
        "REDIS_URL": rd.url,
        "OBJECT_STORE": "file",
        "OBJECT_STORE_ROOT": str(base / "var" / "objects"),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    from common.config import platform_settings, reset_settings_cache

    reset_settings_cache()
    from gateway.identity.keys import ensure_keys

    ensure_keys(platform_settings().keys_dir)
    import asyncio

    from common.migrations import migrate

    asyncio.run(migrate(pg.url()))
    try:
        yield Stack(base / "var", pg.url(), rd.url, pg, rd, env)
    finally:
        rd.stop()
        pg.stop(quiet=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def db(stack: Stack) -> AsyncIterator[object]:
    """The application's pool (role th_app: row-level security applies)."""
    from common.db import Database

    database = await Database.connect(stack.app_database_url, max_size=5)
    yield database
    await database.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def admin_db(stack: Stack) -> AsyncIterator[object]:
    """The owner's pool (migrations role): for checks the application must not be able to make."""
    from common.db import Database

    database = await Database.connect(stack.database_url, max_size=3)
    yield database
    await database.close()


@pytest.fixture(scope="session")
def seeded(stack: Stack) -> Stack:
    """The demo region of gateway/identity/seed.py, seeded once for the session."""
    import asyncio

    import asyncpg

    from gateway.identity.seed import seed_demo_region

    async def run() -> None:
        conn = await asyncpg.connect(stack.database_url)
        try:
            async with conn.transaction():
                await seed_demo_region(conn)
        finally:
            await conn.close()

    asyncio.run(run())
    return stack


@dataclass
class Platform:
    gateway_url: str
    service_urls: dict[str, str]
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    log_dir: Path

    def service_url(self, name: str) -> str:
        return self.service_urls[name]

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")


def _start(name: str, app_path: str, port: int, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    log = (log_dir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app_path, "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--no-proxy-headers", "--timeout-graceful-shutdown", "5"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )


def _wait_ready(url: str, proc: subprocess.Popen[bytes], name: str, log_dir: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{(log_dir / f'{name}.log').read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not become healthy:\n{(log_dir / f'{name}.log').read_text()[-4000:]}")


@pytest.fixture(scope="session")
def platform(seeded: Stack) -> Iterator[Platform]:
    """The gateway and the five services as real processes on free loopback ports."""
    from common.services import SERVICES

    log_dir = seeded.var_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = {spec.name: free_port() for spec in SERVICES}
    gateway_port = free_port()
    service_urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {**os.environ, **seeded.env, "GATEWAY_URL": f"http://127.0.0.1:{gateway_port}"}
    env.update({spec.url_env: service_urls[spec.name] for spec in SERVICES})
    # Every test calls from 127.0.0.1: lift the gateway's per-address limits (tests/gateway/test_ratelimit.py
    # runs a gateway of its own with small ones).
    for name, value in (
        ("GATEWAY_RATE_LOGIN_LIMIT", "100000"),
        ("GATEWAY_RATE_REFRESH_LIMIT", "100000"),
        ("GATEWAY_RATE_ADDRESS_LIMIT", "1000000"),
        ("GATEWAY_RATE_USER_LIMIT", "1000000"),
    ):
        env.setdefault(name, value)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for spec in SERVICES:
            procs[spec.name] = _start(spec.name, spec.app_path, ports[spec.name], env, log_dir)
        procs["gateway"] = _start("gateway", "gateway.app:app", gateway_port, env, log_dir)
        for spec in SERVICES:
            _wait_ready(service_urls[spec.name], procs[spec.name], spec.name, log_dir)
        _wait_ready(env["GATEWAY_URL"], procs["gateway"], "gateway", log_dir)
        yield Platform(env["GATEWAY_URL"], service_urls, env, procs, log_dir)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _demo_totp_secret(username: str) -> str | None:
    from gateway.identity.seed import DEMO_ACCOUNTS

    return next((a.totp_secret for a in DEMO_ACCOUNTS if a.username == username and a.totp_secret), None)


def totp_for(username: str) -> str | None:
    """The current TOTP code of a demo admin, to look at (e.g. to make a wrong one from). To sign in with,
    use :func:`fresh_totp`: the gateway accepts each code once."""
    import pyotp

    secret = _demo_totp_secret(username)
    return str(pyotp.TOTP(secret).now()) if secret else None


_TOTP_STEPS_USED: dict[str, int] = {}  # secret -> the last time step this test process handed out
TOTP_WAITED: list[float] = []  # seconds fresh_code slept, for whoever wants to know what it costs


def fresh_code(secret: str, *, last_accepted: int | None = None) -> str:
    """A TOTP code of ``secret`` for a time step later than any this test process handed out and than
    ``last_accepted`` (the gateway's ``gateway.users.totp_last_step``, when known).

    The gateway refuses a code whose time step is not later than the last one it accepted for the account
    (RFC 6238 §5.2). It takes codes up to ``VALID_WINDOW`` steps ahead of its clock (for phones that run
    fast), so when the current step was used this answers the next step's code at once, and waits (until
    the next 30-s step begins, pyotp's ``interval - time % interval``) only when that one was used too.
    The step counts as used from here on, whether or not the sign-in then succeeds.
    """
    import pyotp

    from gateway.identity.mfa import VALID_WINDOW

    totp = pyotp.TOTP(secret)
    used = max(_TOTP_STEPS_USED.get(secret, -1), -1 if last_accepted is None else last_accepted)
    while True:
        now = time.time()
        current = totp.timecode(now)
        step = max(current, used + 1)
        if step <= current + VALID_WINDOW:
            _TOTP_STEPS_USED[secret] = step
            return str(totp.generate_otp(step))
        wait = (step - VALID_WINDOW) * totp.interval - now + 0.05
        TOTP_WAITED.append(wait)
        time.sleep(wait)


def last_totp_step(username: str) -> int | None:
    """``gateway.users.totp_last_step`` of ``username`` in the session's database (None without a stack),
    so sign-ins made by other helpers count too. Asked from a thread of its own: callers may be inside a
    running event loop (async tests, Playwright's sync API)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import asyncpg

    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        return None

    async def query() -> int | None:
        conn = await asyncpg.connect(dsn)
        try:
            value = await conn.fetchval("SELECT totp_last_step FROM gateway.users WHERE username = $1", username)
            return None if value is None else int(value)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, query()).result(timeout=30)


def fresh_totp(username: str) -> str | None:
    """:func:`fresh_code` of a demo account, past the gateway's record of it (None for accounts without a
    second factor)."""
    secret = _demo_totp_secret(username)
    return fresh_code(secret, last_accepted=last_totp_step(username)) if secret else None


@pytest.fixture(scope="session")
def login(platform: Platform) -> Callable[[str], str]:
    """``login(username) -> access token`` for a demo account, through the gateway.

    One password sign-in per account and session: the token is kept ~10 minutes and then renewed with
    the refresh token, so the administrators' TOTP codes (good for one sign-in each) are rarely needed.
    """
    from gateway.identity.seed import DEMO_PASSWORD

    cache: dict[str, tuple[float, str, str]] = {}  # username -> (when, access token, refresh token)

    def _token(form: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{platform.gateway_url}/auth/token", data=form, timeout=10)

    def _login(username: str, password: str = DEMO_PASSWORD) -> str:
        hit = cache.get(username)
        if hit and password == DEMO_PASSWORD:
            if time.monotonic() - hit[0] < 600:
                return hit[1]
            renewed = _token({"grant_type": "refresh_token", "refresh_token": hit[2]})
            if renewed.status_code == 200:
                body = renewed.json()
                cache[username] = (time.monotonic(), str(body["access_token"]), str(body["refresh_token"]))
                return str(body["access_token"])
        form = {"grant_type": "password", "username": username, "password": password}
        code = fresh_totp(username)
        if code:
            form["totp"] = code
        r = _token(form)
        assert r.status_code == 200, f"login {username}: {r.status_code} {r.text}"
        body = r.json()
        cache[username] = (time.monotonic(), str(body["access_token"]), str(body["refresh_token"]))
        return str(body["access_token"])

    return _login


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
