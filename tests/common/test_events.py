"""The outbox and relay against the real PostgreSQL, on a private copy of the outbox table.

Each test gets its own schema with the services' outbox DDL, so in-process sinks never take events that
other tests recorded in the real service outboxes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from common import events
from common.events import DeliveryFailed, GatewaySink, OutboxEvent, drain_outbox, record_event, relay_pending
from infra.local.stack import free_port

REPO = Path(__file__).resolve().parent.parent.parent


class RecordingSink:
    def __init__(self, *, fail: int = 0, delay: float = 0.0, error: type[Exception] = DeliveryFailed):
        self.fail = fail
        self.delay = delay
        self.error = error
        self.batches: list[tuple[str, list[OutboxEvent]]] = []

    async def deliver(self, source: str, batch: Sequence[OutboxEvent]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise self.error("gateway down")
        self.batches.append((source, list(batch)))

    @property
    def delivered(self) -> list[uuid.UUID]:
        return [e.id for _, b in self.batches for e in b]


@pytest_asyncio.fixture(loop_scope="session")
async def outbox(admin_db: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    schema = f"relay_t{uuid.uuid4().hex[:8]}"
    async with admin_db.transaction() as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute("SELECT platform.create_outbox($1)", schema)  # the services' own outbox DDL
        await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO th_app")
        await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO th_app")
    monkeypatch.setattr(events, "OUTBOX_SCHEMAS", events.OUTBOX_SCHEMAS | {schema})
    try:
        yield schema
    finally:
        async with admin_db.transaction() as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def add(db: Any, schema: str, n: int, event_type: str = "ecg.recording_received") -> list[uuid.UUID]:
    ids = []
    async with db.transaction() as conn:
        for i in range(n):
            ids.append(
                await record_event(
                    conn,
                    schema,
                    event_type,
                    facility_id=uuid.uuid4(),
                    subject_type="recording",
                    subject_id=f"rec-{i}",
                    payload={"i": i},
                )
            )
    return ids


async def rows(admin_db: Any, schema: str) -> dict[uuid.UUID, Any]:
    async with admin_db.transaction() as conn:
        return {r["id"]: r for r in await conn.fetch(f"SELECT * FROM {schema}.outbox")}


async def test_event_belongs_to_the_callers_transaction(db: Any, admin_db: Any, outbox: str) -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with db.transaction() as conn:
            await record_event(
                conn,
                outbox,
                "ecg.report_signed",
                facility_id=None,
                subject_type="report",
                subject_id="r1",
                payload={"on_time": True},
            )
            raise Abort
    assert await rows(admin_db, outbox) == {}
    [eid] = await add(db, outbox, 1)
    row = (await rows(admin_db, outbox))[eid]
    assert row["event_type"] == "ecg.recording_received"
    assert row["payload"] == {"i": 0}
    assert (row["relayed_at"], row["attempts"]) == (None, 0)


@pytest.mark.parametrize(
    ("event_type", "payload", "schema"),
    [
        ("Report Signed", {}, None),
        ("ecg", {}, None),
        ("ecg.report_signed", {"patient_name": "张三"}, None),
        ("ecg.report_signed", {"detail": {"id_number": "110101199003074514"}}, None),
        ("ecg.report_signed", {"blob": "x" * 9000}, None),
        ("ecg.report_signed", {}, "public"),
    ],
)
async def test_record_event_refuses_bad_events(
    db: Any, outbox: str, event_type: str, payload: dict[str, Any], schema: str | None
) -> None:
    async with db.transaction() as conn:
        with pytest.raises(ValueError):
            await record_event(
                conn,
                schema or outbox,
                event_type,
                facility_id=None,
                subject_type=None,
                subject_id=None,
                payload=payload,
            )


async def test_relay_delivers_once_and_marks(db: Any, admin_db: Any, outbox: str) -> None:
    ids = await add(db, outbox, 3)
    sink = RecordingSink()
    result = await relay_pending(db, outbox, sink)
    assert (result.relayed, result.failed) == (3, 0)
    assert sink.batches[0][0] == outbox
    assert sink.delivered == ids  # oldest first
    assert sink.batches[0][1][1].payload == {"i": 1}
    state = await rows(admin_db, outbox)
    assert all(state[i]["relayed_at"] is not None and state[i]["attempts"] == 1 for i in ids)
    assert (await relay_pending(db, outbox, sink)).relayed == 0
    assert len(sink.delivered) == 3


@pytest.mark.parametrize("error", [DeliveryFailed, RuntimeError])
async def test_failure_keeps_events_pending(db: Any, admin_db: Any, outbox: str, error: type[Exception]) -> None:
    ids = await add(db, outbox, 2)
    sink = RecordingSink(fail=2, error=error)
    for attempt in (1, 2):
        result = await relay_pending(db, outbox, sink)
        assert (result.relayed, result.failed) == (0, 2)
        assert result.error and "gateway down" in result.error
        state = await rows(admin_db, outbox)
        assert all(state[i]["relayed_at"] is None and state[i]["attempts"] == attempt for i in ids)
    assert (await relay_pending(db, outbox, sink)).relayed == 2
    assert sink.delivered == ids
    state = await rows(admin_db, outbox)
    assert all(state[i]["attempts"] == 3 and state[i]["relayed_at"] is not None for i in ids)


async def test_concurrent_relays_never_send_a_row_twice(db: Any, outbox: str) -> None:
    ids = await add(db, outbox, 120)
    sink = RecordingSink(delay=0.05)

    async def relay_loop() -> None:
        while (await relay_pending(db, outbox, sink, batch=15)).relayed:
            pass

    await asyncio.gather(relay_loop(), relay_loop(), relay_loop())
    assert sorted(sink.delivered) == sorted(ids)
    assert len(sink.batches) >= 8
    assert len({s for s, _ in sink.batches}) == 1


async def test_least_tried_events_go_first(db: Any, admin_db: Any, outbox: str) -> None:
    [stubborn] = await add(db, outbox, 1)
    async with admin_db.transaction() as conn:
        await conn.execute(f"UPDATE {outbox}.outbox SET attempts = 7 WHERE id = $1", stubborn)
    [fresh] = await add(db, outbox, 1)
    sink = RecordingSink()
    await relay_pending(db, outbox, sink, batch=1)
    assert sink.delivered == [fresh]


async def test_drain_sends_every_batch(db: Any, outbox: str) -> None:
    ids = await add(db, outbox, 230)
    sink = RecordingSink()
    result = await drain_outbox(db, outbox, sink, batch=100)
    assert result.relayed == 230
    assert [len(b) for _, b in sink.batches] == [100, 100, 30]
    assert sorted(sink.delivered) == sorted(ids)


async def test_drain_stops_at_a_failure(db: Any, outbox: str) -> None:
    await add(db, outbox, 5)
    result = await drain_outbox(db, outbox, RecordingSink(fail=1), batch=2)
    assert (result.relayed, result.failed) == (0, 2)


async def test_gateway_sink_to_a_dead_gateway_keeps_events(db: Any, admin_db: Any, outbox: str) -> None:
    [eid] = await add(db, outbox, 1)
    sink = GatewaySink(f"http://127.0.0.1:{free_port()}", "key", timeout=2)
    try:
        result = await relay_pending(db, outbox, sink)
    finally:
        await sink.aclose()
    assert result.failed == 1
    assert result.error and "unreachable" in result.error
    row = (await rows(admin_db, outbox))[eid]
    assert (row["relayed_at"], row["attempts"]) == (None, 1)


def test_wire_format_is_json_ready() -> None:
    from datetime import UTC, datetime

    e = OutboxEvent(
        uuid.uuid4(),
        "consult.requested",
        None,
        "consult",
        "c1",
        {"specialty": "cardiology"},
        datetime(2026, 3, 1, tzinfo=UTC),
    )
    wire = e.to_wire()
    assert wire["id"] == str(e.id)
    assert wire["facility_id"] is None
    assert wire["occurred_at"] == "2026-03-01T00:00:00+00:00"


def test_scrub_payload_removes_identifiers_everywhere() -> None:
    dirty = {"ok": 1, "Phone": "13800138000", "nested": [{"address": "x", "keep": True}]}
    assert events.scrub_payload(dirty) == {"ok": 1, "nested": [{"keep": True}]}
    assert events.find_identifier_keys(dirty) == ["Phone", "nested[0].address"]
