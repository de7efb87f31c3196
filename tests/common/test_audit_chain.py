"""The audit log is append-only for the application and its hash chain exposes edits and deletions.

Tampering is done by the owner role with the refusing triggers disabled, inside a transaction that is
rolled back, so the shared chain stays valid for every other test.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from common.audit import AuditEntry, verify_chain, write


class _Rollback(Exception):
    pass


async def _seed_rows(db: Any, n: int = 3) -> list[int]:
    async with db.transaction() as conn:
        for i in range(n):
            await write(
                conn,
                AuditEntry(
                    source="test",
                    action="test.chain",
                    outcome="success",
                    object_type="probe",
                    object_id=str(i),
                    detail={"i": i},
                ),
            )
        rows = await conn.fetch(
            "SELECT seq FROM audit.events WHERE action = 'test.chain' ORDER BY seq DESC LIMIT $1", n
        )
    return sorted(r["seq"] for r in rows)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit.events SET outcome = 'success' WHERE seq = (SELECT max(seq) FROM audit.events)",
        "DELETE FROM audit.events WHERE seq = (SELECT max(seq) FROM audit.events)",
        "TRUNCATE audit.events",
    ],
)
async def test_application_role_cannot_change_the_log(db: Any, statement: str) -> None:
    await _seed_rows(db, 1)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.transaction() as conn:
            await conn.execute(statement)


async def test_even_the_owner_is_refused_by_the_triggers(admin_db: Any) -> None:
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        async with admin_db.transaction() as conn:
            await conn.execute("DELETE FROM audit.events WHERE seq = (SELECT max(seq) FROM audit.events)")


async def _tampered_report(admin_db: Any, *statements: str, args: tuple[Any, ...] = ()) -> Any:
    """Run ``statements`` as the owner with the triggers off, verify, and roll everything back."""
    report = None
    with pytest.raises(_Rollback):
        async with admin_db.transaction() as conn:
            await conn.execute("ALTER TABLE audit.events DISABLE TRIGGER events_no_update")
            for sql in statements:
                await conn.execute(sql, *args)
            report = await verify_chain(conn)
            raise _Rollback
    return report


async def test_verify_chain_finds_an_edit(db: Any, admin_db: Any) -> None:
    seqs = await _seed_rows(db)
    target = seqs[1]
    report = await _tampered_report(
        admin_db, "UPDATE audit.events SET detail = '{\"i\": 99}'::jsonb WHERE seq = $1", args=(target,)
    )
    assert not report.ok and report.first_bad_seq == target
    assert report.problem == "row content does not match its hash"


async def test_verify_chain_finds_an_edit_with_a_recomputed_hash(db: Any, admin_db: Any) -> None:
    """A forger who recomputes the edited row's hash breaks the next row's link instead."""
    seqs = await _seed_rows(db)
    target = seqs[0]
    report = await _tampered_report(
        admin_db,
        "UPDATE audit.events SET outcome = 'failure' WHERE seq = $1",
        "UPDATE audit.events e SET hash = sha256(e.prev_hash || convert_to(audit.canonical(e), 'UTF8')) WHERE seq = $1",
        args=(target,),
    )
    assert not report.ok and report.first_bad_seq == target + 1
    assert report.problem == "link to the previous row is broken"


async def test_verify_chain_finds_a_deletion(db: Any, admin_db: Any) -> None:
    seqs = await _seed_rows(db)
    target = seqs[1]
    report = await _tampered_report(admin_db, "DELETE FROM audit.events WHERE seq = $1", args=(target,))
    assert not report.ok and report.first_bad_seq == target + 1
    assert "missing" in (report.problem or "")


async def test_the_shared_chain_is_intact_afterwards(db: Any) -> None:
    async with db.transaction() as conn:
        report = await verify_chain(conn)
    assert report.ok, report
    assert report.checked > 0
