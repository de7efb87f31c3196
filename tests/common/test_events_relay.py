"""Events from a service's outbox to the gateway's analytics through a real Celery worker and the real gateway,
and the worker's redelivery guarantee."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import redis

from common.events import GatewaySink, record_event, relay_pending
from infra.local.stack import free_port
from tests.fixtures.celery import CeleryWorker


class Recorded:
    def __init__(self) -> None:
        self.ids: list[uuid.UUID] = []


@pytest_asyncio.fixture(loop_scope="session")
async def recorded(admin_db: Any) -> AsyncIterator[Recorded]:
    """Events this test recorded in the ecg outbox; removed from the outbox and from analytics afterwards."""
    box = Recorded()
    yield box
    async with admin_db.transaction() as conn:
        await conn.execute("DELETE FROM ecg.outbox WHERE id = ANY($1::uuid[])", box.ids)
        await conn.execute(
            "DELETE FROM gateway.analytics_events WHERE source = 'ecg' AND event_id = ANY($1::uuid[])", box.ids
        )


async def record(db: Any, box: Recorded) -> uuid.UUID:
    async with db.transaction() as conn:
        # A real change and its event commit together; here the change is elided.
        eid = await record_event(
            conn,
            "ecg",
            "ecg.report_signed",
            facility_id=uuid.uuid4(),
            subject_type="report",
            subject_id=str(uuid.uuid4()),
            payload={"on_time": True},
        )
    box.ids.append(eid)
    return eid


async def analytics_rows(admin_db: Any, eid: uuid.UUID) -> list[Any]:
    async with admin_db.transaction() as conn:
        return await conn.fetch("SELECT * FROM gateway.analytics_events WHERE source = 'ecg' AND event_id = $1", eid)


async def outbox_row(admin_db: Any, eid: uuid.UUID) -> Any:
    async with admin_db.transaction() as conn:
        return await conn.fetchrow("SELECT * FROM ecg.outbox WHERE id = $1", eid)


async def relay_through_worker(worker: CeleryWorker, admin_db: Any, eid: uuid.UUID, within: float = 30) -> None:
    """Send ecg.relay_events to the worker; wait until the outbox row is marked relayed."""
    worker.app.send_task("ecg.relay_events")
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        row = await outbox_row(admin_db, eid)
        if row is not None and row["relayed_at"] is not None:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"event {eid} not relayed in {within} s; worker log:\n{worker.log()[-3000:]}")


async def test_event_reaches_analytics_through_worker_and_gateway(
    db: Any, admin_db: Any, celery_worker: CeleryWorker, recorded: Recorded
) -> None:
    eid = await record(db, recorded)
    await relay_through_worker(celery_worker, admin_db, eid)
    [row] = await analytics_rows(admin_db, eid)
    assert (row["event_type"], row["payload"]) == ("ecg.report_signed", {"on_time": True})
    source = await outbox_row(admin_db, eid)
    assert row["occurred_at"] == source["occurred_at"]
    assert source["attempts"] == 1


async def test_gateway_down_keeps_event_pending_then_delivers(
    db: Any, admin_db: Any, celery_worker: CeleryWorker, recorded: Recorded
) -> None:
    eid = await record(db, recorded)
    down = GatewaySink(f"http://127.0.0.1:{free_port()}", "key", timeout=2)
    try:
        result = await relay_pending(db, "ecg", down, batch=1000)
    finally:
        await down.aclose()
    assert result.failed >= 1
    row = await outbox_row(admin_db, eid)
    assert row["relayed_at"] is None
    assert row["attempts"] >= 1
    assert await analytics_rows(admin_db, eid) == []
    await relay_through_worker(celery_worker, admin_db, eid)
    assert len(await analytics_rows(admin_db, eid)) == 1


async def test_redelivered_event_is_counted_once(
    db: Any, admin_db: Any, celery_worker: CeleryWorker, recorded: Recorded
) -> None:
    eid = await record(db, recorded)
    await relay_through_worker(celery_worker, admin_db, eid)
    # The gateway took it but the relay's commit was lost: the event is pending again and is sent again.
    async with admin_db.transaction() as conn:
        await conn.execute("UPDATE ecg.outbox SET relayed_at = NULL WHERE id = $1", eid)
    await relay_through_worker(celery_worker, admin_db, eid)
    assert (await outbox_row(admin_db, eid))["attempts"] == 2
    assert len(await analytics_rows(admin_db, eid)) == 1


async def test_task_of_a_killed_worker_child_is_redelivered(celery_worker: CeleryWorker, stack: Any) -> None:
    token = uuid.uuid4().hex
    result = celery_worker.app.send_task("gateway.probe", args=[token, 40])
    client = redis.Redis.from_url(stack.redis_url)
    try:
        deadline = time.monotonic() + 20
        pids: list[bytes] = []
        while not pids and time.monotonic() < deadline:
            pids = client.lrange(f"th:probe:{token}", 0, -1)
            await asyncio.sleep(0.05)
        assert pids, f"the probe never started:\n{celery_worker.log()[-3000:]}"
        first = int(pids[0])
        assert first in celery_worker.child_pids()
        os.kill(first, signal.SIGKILL)  # a child of the worker this session started
        outcome = await asyncio.to_thread(result.get, timeout=30)
    finally:
        client.delete(f"th:probe:{token}")
        client.close()
    assert outcome["deliveries"] == 2
    assert outcome["pid"] != first
