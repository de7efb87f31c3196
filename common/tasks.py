"""The Celery app and its conventions, in one place.

- Redis is broker and result backend (``REDIS_URL``); JSON only.
- ``task_acks_late`` with ``task_reject_on_worker_lost``: a task whose worker child dies is redelivered, not
  dropped (acks_late alone would acknowledge it). Tasks must therefore be idempotent; they are sent after the
  transaction commits, with ids only, and reload what they need.
- Every task has a time limit (defaults below); the broker's ``visibility_timeout`` is fitted to the longest
  one a task may declare (``LONGEST_TASK_SECONDS``), so an unacknowledged message comes back once its worker
  is surely gone, and never while it still runs. ``check_registry`` refuses to start a worker otherwise.
- One queue per service, chosen by the task name's prefix: ``ecg.analyze_recording`` → queue ``ecg``.
- ``BEAT_SCHEDULE`` is the whole periodic schedule: every service relays its outbox every few seconds.

Tasks are plain functions; async work runs through :func:`run_async` on a per-process event loop that keeps
one database pool and one HTTP client for the life of the worker child.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import setup_logging, worker_process_init, worker_process_shutdown

from common.config import PlatformSettings, platform_settings
from common.db import Database
from common.events import GatewaySink, drain_outbox
from common.services import SERVICES

log = logging.getLogger("telehealth.tasks")
T = TypeVar("T")

SERVICE_QUEUES: tuple[str, ...] = tuple(spec.name for spec in SERVICES)
QUEUES: tuple[str, ...] = ("gateway", *SERVICE_QUEUES)
DEFAULT_SOFT_TIME_LIMIT = 300
DEFAULT_TIME_LIMIT = 360
# The longest hard time limit any task may declare (slide pyramids, recording transcodes, cold tiering).
LONGEST_TASK_SECONDS = 2 * 3600
VISIBILITY_TIMEOUT = LONGEST_TASK_SECONDS + 600
RELAY_INTERVAL_SECONDS = 5.0

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    f"{name}.relay_events": {
        "task": f"{name}.relay_events",
        "schedule": RELAY_INTERVAL_SECONDS,
        # A relay that waited longer than two intervals is stale: the next one does its work.
        "options": {"expires": RELAY_INTERVAL_SECONDS * 2},
    }
    for name in SERVICE_QUEUES
}
# ECG critical values: escalate alerts nobody acknowledged; re-queue analyses whose job was lost.
BEAT_SCHEDULE["ecg.escalate_alerts"] = {"task": "ecg.escalate_alerts", "schedule": 60.0, "options": {"expires": 60.0}}
BEAT_SCHEDULE["ecg.requeue_stalled"] = {"task": "ecg.requeue_stalled", "schedule": 60.0, "options": {"expires": 60.0}}
# Imaging: move studies past their facility's days-until-cold to the cold tier (services/imaging/tiering.py).
BEAT_SCHEDULE["imaging.move_cold_studies"] = {"task": "imaging.move_cold_studies", "schedule": 3600.0,
                                              "options": {"expires": 3000.0}}
# Imaging: escalate unacknowledged critical-finding alerts, retry failed deliveries (reading_alerts.py).
BEAT_SCHEDULE["imaging.escalate_critical_alerts"] = {"task": "imaging.escalate_critical_alerts",
                                                     "schedule": 60.0, "options": {"expires": 60.0}}
# Consult: push/withdraw grants to attached items that are still pending; escalate missed deadlines.
BEAT_SCHEDULE["consult.apply_grants"] = {"task": "consult.apply_grants", "schedule": 30.0, "options": {"expires": 30.0}}
BEAT_SCHEDULE["consult.escalate_overdue"] = {"task": "consult.escalate_overdue", "schedule": 60.0,
                                             "options": {"expires": 60.0}}
# Consult: reminders 24 h and 15 min before each booked slot (services/consult/scheduling.py).
BEAT_SCHEDULE["consult.send_reminders"] = {"task": "consult.send_reminders", "schedule": 60.0,
                                           "options": {"expires": 60.0}}


def queue_for(task_name: str) -> str:
    """The queue of a task, by its name's prefix; Celery's own housekeeping runs on the gateway queue."""
    prefix = task_name.split(".", 1)[0]
    if prefix in QUEUES:
        return prefix
    if prefix == "celery":
        return "gateway"
    raise ValueError(f"task {task_name!r} has no queue: name it '<service>.<action>' ({', '.join(QUEUES)})")


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict[str, str]:
    queue = queue_for(name)
    return {"queue": queue, "routing_key": queue}


def create_celery(settings: PlatformSettings | None = None) -> Celery:
    """A Celery app with the platform's conventions, on ``settings.redis_url``."""
    s = settings or platform_settings()
    broker = s.redis_url or None
    app = Celery("telehealth", broker=broker, backend=broker, set_as_current=False)
    transport = {"visibility_timeout": VISIBILITY_TIMEOUT}
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=DEFAULT_SOFT_TIME_LIMIT,
        task_time_limit=DEFAULT_TIME_LIMIT,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        result_expires=24 * 3600,
        task_routes=(route_task,),
        task_default_queue="gateway",
        worker_max_tasks_per_child=500,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        timezone="Asia/Shanghai",
        enable_utc=True,
        beat_schedule=BEAT_SCHEDULE,
        beat_schedule_filename=str(s.th_var_dir / "celerybeat-schedule"),
    )
    return app


celery_app = create_celery()


def check_registry(app: Celery) -> None:
    """Refuse to run tasks that break the conventions: no queue, or a limit beyond the visibility timeout."""
    problems = []
    for name, task in app.tasks.items():
        if name.startswith("celery."):
            continue
        try:
            queue_for(name)
        except ValueError as exc:
            problems.append(str(exc))
        limit = task.time_limit or app.conf.task_time_limit
        if limit is None or limit > LONGEST_TASK_SECONDS:
            problems.append(
                f"task {name!r}: time limit {limit} s exceeds LONGEST_TASK_SECONDS "
                f"({LONGEST_TASK_SECONDS} s); raise it in common/tasks.py"
            )
    if problems:
        raise RuntimeError("Celery task registry: " + "; ".join(problems))


# -- async work inside tasks ---------------------------------------------------------------------


class TaskRuntime:
    """One event loop, database pool and gateway client per worker process (and thread)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._db: Database | None = None
        self._sink: GatewaySink | None = None

    async def db(self) -> Database:
        if self._db is None:
            s = platform_settings()
            self._db = await Database.connect(s.application_dsn(), min_size=1, max_size=2)
        return self._db

    def sink(self) -> GatewaySink:
        if self._sink is None:
            self._sink = GatewaySink.from_settings(platform_settings())
        return self._sink

    def close(self) -> None:
        async def shut() -> None:
            if self._sink is not None:
                await self._sink.aclose()
            if self._db is not None:
                await self._db.close()

        try:
            self.loop.run_until_complete(asyncio.wait_for(shut(), timeout=5))
        except Exception:  # closing at exit: nothing to save
            log.debug("task runtime close failed", exc_info=True)
        finally:
            self.loop.close()


_local = threading.local()


def runtime() -> TaskRuntime:
    rt: TaskRuntime | None = getattr(_local, "runtime", None)
    if rt is None or rt.pid != os.getpid():  # a forked child never reuses its parent's pool
        rt = TaskRuntime()
        _local.runtime = rt
    return rt


def run_async(work: Callable[[TaskRuntime], Awaitable[T]]) -> T:
    """Run ``work(runtime)`` to completion on this process's loop, inside a synchronous task."""
    rt = runtime()
    try:
        return rt.loop.run_until_complete(work(rt))
    except SoftTimeLimitExceeded:
        # The limit interrupted the loop mid-step: start the next task on a fresh runtime.
        _local.runtime = None
        raise


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _fresh_runtime(**_: Any) -> None:
    _local.runtime = None


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _close_runtime(**_: Any) -> None:
    rt: TaskRuntime | None = getattr(_local, "runtime", None)
    if rt is not None and rt.pid == os.getpid():
        rt.close()
    _local.runtime = None


@setup_logging.connect  # type: ignore[untyped-decorator]
def _json_logs(**_: Any) -> None:
    from common.logging import configure_logging

    configure_logging("worker", platform_settings().log_level)


# -- the tasks every deployment has ---------------------------------------------------------------


def register_relay_task(service: str) -> Task:
    """Register ``<service>.relay_events``: drain the service's outbox to the gateway (idempotent)."""
    if service not in SERVICE_QUEUES:
        raise ValueError(f"unknown service {service!r}")

    async def relay(rt: TaskRuntime) -> dict[str, Any]:
        result = await drain_outbox(await rt.db(), service, rt.sink())
        return {"relayed": result.relayed, "failed": result.failed}

    def relay_events() -> dict[str, Any]:
        return run_async(relay)

    relay_events.__doc__ = f"Relay the {service} outbox to the gateway's analytics."
    task: Task = celery_app.task(name=f"{service}.relay_events", soft_time_limit=60, time_limit=90, ignore_result=True)(
        relay_events
    )
    return task


@celery_app.task(name="gateway.ping", soft_time_limit=10, time_limit=15)  # type: ignore[untyped-decorator]
def ping() -> dict[str, Any]:
    """Answer from a worker: readiness checks and tests."""
    return {"pid": os.getpid(), "at": time.time()}


@celery_app.task(name="gateway.probe", soft_time_limit=60, time_limit=75)  # type: ignore[untyped-decorator]
def probe(token: str, hold_seconds: float = 0.0) -> dict[str, Any]:
    """Record this delivery in Redis (``th:probe:<token>``); hold on the first one only.

    An operational check that a redelivery works end to end: kill the worker child while it holds and the
    message must come back (acks_late + reject_on_worker_lost). Safe to repeat: it only appends a pid.
    """
    import redis

    key = f"th:probe:{token}"
    client = redis.Redis.from_url(platform_settings().require_redis_url())
    try:
        deliveries = int(cast(int, client.rpush(key, os.getpid())))
        client.expire(key, 600)
    finally:
        client.close()
    if deliveries == 1:
        time.sleep(max(0.0, min(hold_seconds, 50.0)))
    return {"pid": os.getpid(), "deliveries": deliveries}
