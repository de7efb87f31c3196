"""The migration runner: idempotent, recorded, and safe when two processes start at once."""

from __future__ import annotations

import asyncio

import asyncpg

from common.migrations import migrate, platform_migration_sets


async def test_second_run_applies_nothing(stack) -> None:
    assert await migrate(stack.database_url) == []


async def test_concurrent_runs_do_not_collide(stack) -> None:
    results = await asyncio.gather(*(migrate(stack.database_url) for _ in range(3)))
    assert results == [[], [], []]


async def test_every_schema_recorded(stack) -> None:
    conn = await asyncpg.connect(stack.database_url)
    try:
        recorded = {r["schema_name"] for r in await conn.fetch("SELECT schema_name FROM schema_migrations")}
        owned = {ms.schema for ms in platform_migration_sets() if any(ms.directory.glob("*.sql"))}
        assert owned <= recorded
        app_bypasses_rls = await conn.fetchval("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'th_app'")
        assert app_bypasses_rls is False
    finally:
        await conn.close()


async def test_app_role_cannot_rewrite_audit(stack, db) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO audit.events (source, action, outcome, seq, occurred_at, prev_hash, hash)"
            " VALUES ('test', 'probe', 'success', 0, now(), ''::bytea, ''::bytea)"
        )
    for statement in ("UPDATE audit.events SET outcome = 'x'", "DELETE FROM audit.events"):
        try:
            async with db.transaction() as conn:
                await conn.execute(statement)
        except asyncpg.InsufficientPrivilegeError:
            continue
        raise AssertionError(f"th_app was allowed: {statement}")
