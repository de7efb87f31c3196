"""Numbered plain-SQL migrations per schema, applied once, recorded, safe when processes race.

Each schema owns a folder of files named ``NNNN_description.sql``. The runner takes a cluster-wide
advisory lock, creates the application role when missing, applies what has not run (each file in its
own transaction, checksum recorded), then grants the application role what the schema allows.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from common.config import APP_DB_ROLE, REPO_ROOT

log = logging.getLogger("telehealth.migrations")

LOCK_KEY = 0x7E1E_4EA1  # pg_advisory_lock key shared by every migrating process
FILE_PATTERN = re.compile(r"^(\d{4})_[\w\-]+\.sql$")


@dataclass(frozen=True)
class MigrationSet:
    schema: str
    directory: Path
    # Standard DML for the application role on every table; False for schemas that grant their own
    # (the audit log grants INSERT and SELECT only).
    grant_dml: bool = True


def platform_migration_sets() -> list[MigrationSet]:
    """Every schema of the platform, in the order they must be applied."""
    sets = [
        MigrationSet("platform", REPO_ROOT / "common" / "migrations" / "platform"),
        MigrationSet("audit", REPO_ROOT / "common" / "migrations" / "audit", grant_dml=False),
        MigrationSet("gateway", REPO_ROOT / "gateway" / "migrations"),
    ]
    for name in ("imaging", "ecg", "pathology", "consult", "health_mgmt"):
        sets.append(MigrationSet(name, REPO_ROOT / "services" / name / "migrations"))
    return sets


@dataclass(frozen=True)
class MigrationFile:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def migration_files(directory: Path) -> list[MigrationFile]:
    files = []
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            m = FILE_PATTERN.match(path.name)
            if m:
                files.append(MigrationFile(int(m.group(1)), path.name, path))
    versions = [f.version for f in files]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"{directory}: two migrations share a number")
    return files


async def _ensure_app_role(conn: asyncpg.Connection, password: str | None) -> None:
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_DB_ROLE)
    if not exists:
        await conn.execute(f"CREATE ROLE {APP_DB_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
    if password:
        await conn.execute(f"ALTER ROLE {APP_DB_ROLE} PASSWORD {_literal(password)}")
    db = await conn.fetchval("SELECT current_database()")
    await conn.execute(f'GRANT CONNECT ON DATABASE "{db}" TO {APP_DB_ROLE}')


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def _grant(conn: asyncpg.Connection, ms: MigrationSet) -> None:
    await conn.execute(f"GRANT USAGE ON SCHEMA {ms.schema} TO {APP_DB_ROLE}")
    await conn.execute(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {ms.schema} TO {APP_DB_ROLE}")
    if ms.grant_dml:
        await conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {ms.schema} TO {APP_DB_ROLE}"
        )
        await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {ms.schema} TO {APP_DB_ROLE}")


async def migrate(
    admin_dsn: str, sets: list[MigrationSet] | None = None, *, app_password: str | None = None
) -> list[str]:
    """Apply every pending migration; returns ``schema/file`` names applied now."""
    sets = platform_migration_sets() if sets is None else sets
    applied_now: list[str] = []
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            await conn.execute(
                """
                CREATE TABLE IF NOT EXISTS public.schema_migrations (
                    schema_name text NOT NULL,
                    version integer NOT NULL,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (schema_name, version)
                )"""
            )
            await _ensure_app_role(conn, app_password)
            for ms in sets:
                done = {
                    r["version"]: r["checksum"]
                    for r in await conn.fetch(
                        "SELECT version, checksum FROM public.schema_migrations WHERE schema_name = $1",
                        ms.schema,
                    )
                }
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ms.schema}")
                for mf in migration_files(ms.directory):
                    if mf.version in done:
                        if done[mf.version] != mf.checksum:
                            log.warning("applied migration changed since", extra={"migration": mf.name})
                        continue
                    async with conn.transaction():
                        await conn.execute(f"SET LOCAL search_path TO {ms.schema}, public")
                        await conn.execute(mf.sql)
                        await conn.execute(
                            "INSERT INTO public.schema_migrations (schema_name, version, name, checksum)"
                            " VALUES ($1, $2, $3, $4)",
                            ms.schema,
                            mf.version,
                            mf.name,
                            mf.checksum,
                        )
                    applied_now.append(f"{ms.schema}/{mf.name}")
                    log.info("migration applied", extra={"migration": f"{ms.schema}/{mf.name}"})
                await _grant(conn, ms)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()
    return applied_now


def main() -> None:
    import asyncio

    from common.config import platform_settings
    from common.logging import configure_logging

    configure_logging("migrate")
    s = platform_settings()
    applied = asyncio.run(migrate(s.require_database_url(), app_password=s.app_db_password or None))
    print(f"migrations: {len(applied)} applied")


if __name__ == "__main__":
    main()
