"""Celery tasks of the ecg service (queue ``ecg``; names start with ``ecg.``; see common/tasks.py).

Every task takes ids only, reloads what it needs and is idempotent. The beat schedule (common/tasks.py)
runs ``ecg.escalate_alerts`` and ``ecg.requeue_stalled`` every minute.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis

from common.auth import system_principal
from common.config import platform_settings
from common.storage import ObjectStore, open_store
from common.tasks import TaskRuntime, celery_app, register_relay_task, run_async
from services.ecg import jobs

log = logging.getLogger("telehealth.ecg.tasks")
relay_events = register_relay_task("ecg")

# Stalled: still 'new' this long after upload, or 'analysing' longer than the task may run.
NEW_STALL_SECONDS = 120.0
ANALYSIS_SOFT_LIMIT = 1800
ANALYSIS_HARD_LIMIT = 1900

_resources: dict[int, tuple[ObjectStore, aioredis.Redis]] = {}


def _store_and_redis(rt: TaskRuntime) -> tuple[ObjectStore, aioredis.Redis]:
    """One object store and one Redis client per worker runtime (its event loop)."""
    key = id(rt)
    if key not in _resources:
        s = platform_settings()
        _resources.clear()  # a new runtime (fresh loop): drop clients bound to the old one
        _resources[key] = (open_store(s), aioredis.from_url(s.require_redis_url()))
    return _resources[key]


@celery_app.task(name=jobs.ANALYZE, soft_time_limit=ANALYSIS_SOFT_LIMIT, time_limit=ANALYSIS_HARD_LIMIT)  # type: ignore[untyped-decorator]
def analyze_recording(recording_id: str) -> dict[str, Any]:
    """Analyse one recording (chunked for long records), store the result, raise its critical values."""
    from services.ecg.analysis_job import analyze_recording as job

    async def work(rt: TaskRuntime) -> dict[str, Any]:
        store, redis = _store_and_redis(rt)
        return await job(await rt.db(), store, redis, UUID(recording_id))

    return run_async(work)


@celery_app.task(name=jobs.RENDER, soft_time_limit=180, time_limit=240)  # type: ignore[untyped-decorator]
def render_report(recording_id: str) -> dict[str, Any]:
    """Render the signed report of one recording as PDF and DICOM and store both."""
    from services.ecg.reports import render_report as job

    async def work(rt: TaskRuntime) -> dict[str, Any]:
        store, _ = _store_and_redis(rt)
        return await job(await rt.db(), store, UUID(recording_id))

    return run_async(work)


@celery_app.task(name="ecg.escalate_alerts", soft_time_limit=60, time_limit=90, ignore_result=False)  # type: ignore[untyped-decorator]
def escalate_alerts(after_minutes: float | None = None) -> dict[str, Any]:
    """Escalate critical-value alerts left unacknowledged (ECG_ALERT_ESCALATION_MINUTES unless given)."""
    from services.ecg.alerts import escalate

    async def work(rt: TaskRuntime) -> dict[str, Any]:
        _, redis = _store_and_redis(rt)
        due = await escalate(await rt.db(), redis, system_principal(), after_minutes=after_minutes)
        return {"escalated": [str(a.id) for a in due]}

    return run_async(work)


@celery_app.task(name="ecg.requeue_stalled", soft_time_limit=60, time_limit=90)  # type: ignore[untyped-decorator]
def requeue_stalled() -> dict[str, Any]:
    """Queue the analysis again for recordings whose job was lost (broker down at upload, worker killed)."""
    from services.ecg import repository as repo

    async def work(rt: TaskRuntime) -> dict[str, Any]:
        db = await rt.db()
        async with db.transaction(system_principal()) as conn:
            ids = await repo.stalled_recordings(conn, NEW_STALL_SECONDS, ANALYSIS_HARD_LIMIT + 60)
        for rid in ids:
            celery_app.send_task(jobs.ANALYZE, args=[str(rid)])
        return {"requeued": [str(r) for r in ids]}

    return run_async(work)
