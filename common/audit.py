"""The audit writer and the chain verifier.

Rows go to ``audit.events`` (see common/migrations/audit). The database assigns the sequence number,
the time and the hashes; this module writes entries and checks the chain.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from common.auth import Principal
from common.db import Database

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GENESIS = bytes(32)


@dataclass
class AuditEntry:
    """One audited action: who did what to which object, and how it ended."""

    source: str
    action: str
    outcome: str  # "success" | "failure" | "denied"
    actor_id: UUID | None = None
    actor_name: str | None = None
    actor_role: str | None = None
    facility_id: UUID | None = None
    object_type: str | None = None
    object_id: str | None = None
    status_code: int | None = None
    client_addr: str | None = None
    request_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_principal(cls, principal: Principal | None, **kw: Any) -> AuditEntry:
        if principal is not None:
            kw.setdefault("actor_id", principal.user_id)
            kw.setdefault("actor_name", principal.username)
            kw.setdefault("actor_role", ",".join(sorted(principal.roles)) or None)
            kw.setdefault("facility_id", principal.facility_id)
        return cls(**kw)


def outcome_for_status(status: int) -> str:
    if status < 400:
        return "success"
    if status in (401, 403, 404):
        return "denied"
    return "failure"


_INSERT = """
INSERT INTO audit.events (source, actor_id, actor_name, actor_role, facility_id, action, object_type,
    object_id, outcome, status_code, client_addr, request_id, detail, seq, occurred_at, prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, now(), ''::bytea, ''::bytea)
"""


async def write(conn: asyncpg.Connection, entry: AuditEntry) -> None:
    """Append ``entry`` in the caller's transaction."""
    await conn.execute(_INSERT, *_args(entry))


def _args(entry: AuditEntry) -> tuple[Any, ...]:
    return (
        entry.source,
        entry.actor_id,
        entry.actor_name,
        entry.actor_role,
        entry.facility_id,
        entry.action,
        entry.object_type,
        entry.object_id,
        entry.outcome,
        entry.status_code,
        entry.client_addr,
        entry.request_id,
        entry.detail,
    )


class AuditWriter:
    """Writes audit entries in transactions of their own (an audit survives a failed request).

    Group commit: entries that arrive while a write is in flight go together in the next transaction, so
    under load one commit (one WAL flush) carries many rows instead of one each. ``record`` returns only
    once its entry is committed, and raises if it could not be.
    """

    MAX_BATCH = 256

    def __init__(self, db: Database):
        self._db = db
        self._pending: list[tuple[AuditEntry, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, entry: AuditEntry) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.MAX_BATCH], self._pending[self.MAX_BATCH :]
            try:
                async with self._db.transaction() as conn:
                    await conn.executemany(_INSERT, [_args(entry) for entry, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


def canonical(row: dict[str, Any]) -> str:
    """The text a row's hash covers; mirrors audit.canonical() in SQL."""
    micros = (row["occurred_at"] - EPOCH) // _MICRO
    fields = [
        str(row["seq"]),
        str(micros),
        row["source"],
        _s(row["actor_id"]),
        _s(row["actor_name"]),
        _s(row["actor_role"]),
        _s(row["facility_id"]),
        row["action"],
        _s(row["object_type"]),
        _s(row["object_id"]),
        row["outcome"],
        _s(row["status_code"]),
        _s(row["client_addr"]),
        _s(row["request_id"]),
        row["detail_text"],
        bytes(row["prev_hash"]).hex(),
    ]
    return "\x1f".join(fields)


def _s(v: Any) -> str:
    return "" if v is None else str(v)


_MICRO = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - EPOCH


@dataclass
class ChainReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


async def verify_chain(conn: asyncpg.Connection, *, batch: int = 5000) -> ChainReport:
    """Walk the whole log in order; report the first edited, missing or reordered row."""
    prev_hash = GENESIS
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        rows = await conn.fetch(
            "SELECT seq, occurred_at, source, actor_id, actor_name, actor_role, facility_id, action,"
            " object_type, object_id, outcome, status_code, client_addr, request_id,"
            " detail::text AS detail_text, prev_hash, hash FROM audit.events WHERE seq > $1"
            " ORDER BY seq LIMIT $2",
            last_seq,
            batch,
        )
        if not rows:
            return ChainReport(ok=True, checked=checked)
        for r in rows:
            row = dict(r)
            seq = row["seq"]
            if seq != expected_seq:
                return ChainReport(False, checked, seq, f"row {expected_seq} is missing (next is {seq})")
            if bytes(row["prev_hash"]) != prev_hash:
                return ChainReport(False, checked, seq, "link to the previous row is broken")
            digest = hashlib.sha256(prev_hash + canonical(row).encode()).digest()
            if digest != bytes(row["hash"]):
                return ChainReport(False, checked, seq, "row content does not match its hash")
            prev_hash = digest
            expected_seq += 1
            checked += 1
            last_seq = seq


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
