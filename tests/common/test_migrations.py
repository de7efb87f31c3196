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


async def test_every_facility_table_has_the_fast_policy(stack) -> None:
    """Every table with facility_id in a service schema is under row-level security, forced, and its policy
    computes the caller's facilities once per query (platform.scope_to_facility), not once per row."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            """
            SELECT c.oid, n.nspname || '.' || c.relname AS name, c.relrowsecurity, c.relforcerowsecurity
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'facility_id' AND NOT a.attisdropped
            WHERE c.relkind = 'r' AND n.nspname IN ('imaging', 'ecg', 'pathology', 'consult', 'health_mgmt')
            """
        )
        assert rows, "no clinical tables found"
        for r in rows:
            if r["name"].endswith(".outbox"):
                continue  # events carry ids only and are read by the relay, not by users
            assert r["relrowsecurity"] and r["relforcerowsecurity"], f"{r['name']} is not under forced RLS"
            quals = [q for (q,) in await conn.fetch(
                "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = $1", r["oid"])]
            assert quals, f"{r['name']} has no policy"
            assert not any("may_see_facility" in q for q in quals), f"{r['name']} evaluates its policy per row"
    finally:
        await conn.close()
