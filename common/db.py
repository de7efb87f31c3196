"""The asyncpg pool, and transactions that carry the caller into PostgreSQL for row-level security.

Every transaction opened with a principal sets, for that transaction only:
``app.user_id``, ``app.facility_ids`` (comma-separated visible facilities), ``app.roles`` and
``app.system`` (``on`` for the platform's own background work). The policies created by the
migrations read them through ``platform.visible_facilities()`` and ``platform.is_system()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson

from common.auth import Principal


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=60
    )
    assert pool is not None
    return pool


async def set_principal(conn: asyncpg.Connection, principal: Principal | None) -> None:
    """Carry ``principal`` into the current transaction's settings (transaction-local)."""
    if principal is None:
        return
    await conn.execute(
        "SELECT set_config('app.user_id', $1, true), set_config('app.facility_ids', $2, true),"
        " set_config('app.roles', $3, true), set_config('app.system', $4, true)",
        str(principal.user_id),
        ",".join(sorted(str(f) for f in principal.visible_facility_ids)),
        ",".join(sorted(principal.roles)),
        "on" if principal.system else "off",
    )


class Database:
    """A pool plus the transaction discipline: the caller owns the transaction."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 1, max_size: int = 10) -> Database:
        return cls(await create_pool(dsn, min_size=min_size, max_size=max_size))

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self, principal: Principal | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A connection in a transaction, committed on exit, rolled back on error."""
        async with self.pool.acquire() as conn, conn.transaction():
            await set_principal(conn, principal)
            yield conn

    async def ping(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")


def row_to_dict(row: asyncpg.Record | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None
