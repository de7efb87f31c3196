"""Celery tasks of the imaging service (queue ``imaging``; names start with ``imaging.``; see common/tasks.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common.config import platform_settings
from common.storage import ObjectStore, open_store
from common.tasks import TaskRuntime, celery_app, register_relay_task, run_async

relay_events = register_relay_task("imaging")


@celery_app.task(name="imaging.render_report", soft_time_limit=180, time_limit=240)  # type: ignore[untyped-decorator]
def render_report(study_ref: str) -> dict[str, Any]:
    """Render the signed report of a study as PDF and DICOM Encapsulated PDF and store both (reading)."""
    from services.imaging.reports import render_report as job

    async def work(rt: TaskRuntime) -> dict[str, Any]:
        return await job(await rt.db(), _store(rt), UUID(study_ref))

    return run_async(work)


_stores: dict[int, ObjectStore] = {}


def _store(rt: TaskRuntime) -> ObjectStore:
    """One object store per worker runtime (its event loop)."""
    if id(rt) not in _stores:
        _stores.clear()
        _stores[id(rt)] = open_store(platform_settings())
    return _stores[id(rt)]


# -- tiering and de-identified export (tiering.py, deid.py) -----------------------------------------


@celery_app.task(name="imaging.move_cold_studies", soft_time_limit=3600, time_limit=3900)  # type: ignore[untyped-decorator]
def move_cold_studies() -> dict[str, Any]:
    """Beat: move studies older than their facility's days-until-cold to the cold tier (idempotent)."""
    from services.imaging import tiering

    async def work(rt: TaskRuntime) -> dict[str, Any]:
        return await tiering.move_due_studies(await rt.db(), _store(rt), tiering.cold_store())

    return run_async(work)


@celery_app.task(name="imaging.rewarm_study", soft_time_limit=1800, time_limit=2000)  # type: ignore[untyped-decorator]
def rewarm_study(study_uid: str) -> dict[str, Any]:
    """Bring a cold study back to the hot tier (queued by a cold retrieve when IMAGING_REWARM_ON_RETRIEVE)."""
    from services.imaging import tiering

    async def work(rt: TaskRuntime) -> dict[str, Any]:
        return dict(await tiering.rewarm(await rt.db(), _store(rt), tiering.cold_store(), study_uid))

    return run_async(work)


@celery_app.task(name="imaging.build_export", soft_time_limit=3600, time_limit=3900)  # type: ignore[untyped-decorator]
def build_export(export_id: str) -> dict[str, Any]:
    """Build a de-identified export ZIP (PS3.15 Annex E basic profile; deid.py)."""
    from services.imaging import deid_export, tiering

    async def work(rt: TaskRuntime) -> dict[str, Any]:
        store = tiering.TieredStore(_store(rt), tiering.cold_store())  # reads wherever each row says
        return await deid_export.build_export(await rt.db(), store, UUID(export_id))

    return run_async(work)


@celery_app.task(name="imaging.escalate_critical_alerts", soft_time_limit=50, time_limit=60)  # type: ignore[untyped-decorator]
def escalate_critical_alerts() -> dict[str, Any]:
    """Beat: escalate critical-finding alerts nobody acknowledged in time; retry failed deliveries."""
    from common.auth import system_principal
    from services.imaging import reading_alerts

    async def work(rt: TaskRuntime) -> dict[str, Any]:
        import redis.asyncio as aioredis

        redis = aioredis.from_url(platform_settings().require_redis_url())
        try:
            due = await reading_alerts.escalate(await rt.db(), redis, system_principal())
        finally:
            await redis.aclose()
        return {"escalated": len(due)}

    return run_async(work)
