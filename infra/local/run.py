"""``make run``: the whole platform on this machine with embedded defaults and demo data.

Starts what is not configured (PostgreSQL and Redis under ./var on free ports unless DATABASE_URL and
REDIS_URL are set; the local-directory object store unless OBJECT_STORE=s3), applies migrations, seeds
the demo region once, then runs every process of the Procfile under honcho with prefixed logs.
Ctrl-C stops everything it started.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import asyncpg
from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer

from common.config import REPO_ROOT, platform_settings, reset_settings_cache
from common.migrations import migrate
from common.services import GATEWAY_DEFAULT_PORT, SERVICES
from gateway.identity.keys import ensure_keys
from infra.local.stack import Postgres, Redis, free_port


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


async def _prepare_database(dsn: str) -> bool:
    from gateway.identity.seed import seed_demo_region

    await migrate(dsn, app_password=os.environ.get("APP_DB_PASSWORD") or None)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            return await seed_demo_region(conn)
    finally:
        await conn.close()


def _banner(url: str, seeded_now: bool) -> str:
    from gateway.identity.seed import DEMO_ACCOUNTS, DEMO_PASSWORD

    lines = [
        "",
        "  区域远程医疗云 Regional Tele-Health Cloud is starting",
        f"  Open: {url}",
        f"  Demo data: {'seeded now' if seeded_now else 'kept from the last run'}; password for every account: "
        f"{DEMO_PASSWORD}",
        "",
        f"  {'username':<16}{'role':<18}{'facility':<14}TOTP secret (admins: `make otp` prints the code)",
    ]
    for a in DEMO_ACCOUNTS:
        lines.append(f"  {a.username:<16}{a.role:<18}{a.facility_code:<14}{a.totp_secret or ''}")
    lines.append("  API docs: " + url + "/docs   Ctrl-C stops everything.\n")
    return "\n".join(lines)


def main() -> int:
    var = Path(os.environ.get("TH_VAR_DIR", REPO_ROOT / "var")).resolve()
    var.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["TH_VAR_DIR"] = str(var)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    pg: Postgres | None = None
    redis: Redis | None = None
    try:
        if not env.get("DATABASE_URL"):
            pg = Postgres(var / "postgres").start()
            env["DATABASE_URL"] = pg.url()
        if not env.get("REDIS_URL"):
            redis = Redis(var / "redis").start()
            env["REDIS_URL"] = redis.url
        os.environ.update(env)
        reset_settings_cache()
        settings = platform_settings()
        ensure_keys(settings.keys_dir)
        seeded_now = asyncio.run(_prepare_database(settings.require_database_url()))

        host = env.setdefault("GATEWAY_HOST", "127.0.0.1")
        port = int(env.get("GATEWAY_PORT", GATEWAY_DEFAULT_PORT))
        if not _port_free(port):
            chosen = free_port()
            print(f"port {port} is busy; the gateway takes {chosen}")
            port = chosen
        env["GATEWAY_PORT"] = str(port)
        env["GATEWAY_URL"] = f"http://127.0.0.1:{port}"
        for spec in SERVICES:
            if not env.get(spec.url_env):
                sport = spec.default_port if _port_free(spec.default_port) else free_port()
                env[f"{spec.name.upper()}_PORT"] = str(sport)
                env[spec.url_env] = f"http://127.0.0.1:{sport}"
        (var / "stack.env").write_text(
            "".join(f"{k}={env[k]}\n" for k in ("DATABASE_URL", "REDIS_URL", "GATEWAY_URL", "TH_VAR_DIR"))
        )
        print(_banner(f"http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}", seeded_now))

        procfile = parse_procfile((REPO_ROOT / "Procfile").read_text())
        manager = Manager(Printer(sys.stdout))
        for name, command in procfile.processes.items():
            manager.add_process(name, command, cwd=str(REPO_ROOT), env=env)
        manager.loop()
        return int(manager.returncode or 0)
    finally:
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop(quiet=True)


if __name__ == "__main__":
    sys.exit(main())
