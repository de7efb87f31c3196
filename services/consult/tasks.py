"""Celery tasks of the consult service (queue ``consult``; names start with ``consult.``; see common/tasks.py).

Other consult modules may append their tasks here (keep it additive).
"""

from __future__ import annotations

from typing import Any

from common.tasks import TaskRuntime, celery_app, register_relay_task, run_async

relay_events = register_relay_task("consult")


@celery_app.task(name="consult.apply_grants", soft_time_limit=120, time_limit=180)  # type: ignore[untyped-decorator]
def apply_grants() -> dict[str, Any]:
    """Beat: push pending grants to the owning services and withdraw those of closed/cancelled consults."""
    from services.consult import grants

    async def work(rt: TaskRuntime) -> dict[str, Any]:
        return await grants.apply(await rt.db())

    return run_async(work)


@celery_app.task(name="consult.escalate_overdue", soft_time_limit=120, time_limit=180)  # type: ignore[untyped-decorator]
def escalate_overdue() -> dict[str, Any]:
    """Beat: mark and escalate consults past their respond or opinion deadline (once per deadline)."""
    from services.consult import overdue

    async def work(rt: TaskRuntime) -> dict[str, Any]:
        return await overdue.escalate(await rt.db())

    return run_async(work)


# -- scheduling reminders (services/consult/scheduling.py) -------------------------------------------------


@celery_app.task(name="consult.send_reminders", soft_time_limit=60, time_limit=90)  # type: ignore[untyped-decorator]
def send_reminders(now: str | None = None) -> dict[str, int]:
    """Beat: record ``consult.reminder`` events 24 h and 15 min before each booked slot, once each. ``now``
    (ISO 8601) replaces the clock, for tests and catch-up runs."""
    from datetime import datetime

    from common.auth import system_principal
    from services.consult.scheduling import send_reminders as send

    at = datetime.fromisoformat(now) if now else None

    async def work(rt: TaskRuntime) -> dict[str, int]:
        return await send(await rt.db(), system_principal(), at)

    return run_async(work)
