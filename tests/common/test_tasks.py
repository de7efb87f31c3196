"""The Celery conventions of common/tasks.py and the worker entry point infra/worker.py."""

from __future__ import annotations

import pytest

from common.config import PlatformSettings
from common.services import SERVICES
from common.tasks import (
    BEAT_SCHEDULE,
    LONGEST_TASK_SECONDS,
    QUEUES,
    VISIBILITY_TIMEOUT,
    check_registry,
    create_celery,
    queue_for,
)


def test_conventions() -> None:
    app = create_celery(PlatformSettings(redis_url="redis://127.0.0.1:1/0"))
    c = app.conf
    assert c.broker_url == "redis://127.0.0.1:1/0"
    assert c.result_backend == "redis://127.0.0.1:1/0"
    assert c.task_acks_late is True
    assert c.task_reject_on_worker_lost is True
    assert c.worker_prefetch_multiplier == 1
    assert (c.task_serializer, c.result_serializer, list(c.accept_content)) == ("json", "json", ["json"])
    assert c.task_soft_time_limit < c.task_time_limit <= LONGEST_TASK_SECONDS
    assert c.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT > LONGEST_TASK_SECONDS
    assert c.beat_schedule == BEAT_SCHEDULE


def test_one_queue_per_service_by_name_prefix() -> None:
    assert QUEUES == ("gateway", *(s.name for s in SERVICES))
    assert queue_for("ecg.analyze_recording") == "ecg"
    assert queue_for("health_mgmt.followups_due") == "health_mgmt"
    assert queue_for("gateway.ping") == "gateway"
    assert queue_for("celery.chord_unlock") == "gateway"
    with pytest.raises(ValueError):
        queue_for("analyze_recording")
    app = create_celery(PlatformSettings(redis_url="redis://127.0.0.1:1/0"))
    route = app.amqp.router.route({}, "pathology.build_pyramid")
    assert route["queue"].name == "pathology"


def test_beat_relays_every_service_every_few_seconds() -> None:
    relays = {f"{s.name}.relay_events" for s in SERVICES}
    assert relays <= {e["task"] for e in BEAT_SCHEDULE.values()}
    assert all(e["schedule"] <= 10 and e["options"]["expires"] for e in BEAT_SCHEDULE.values() if e["task"] in relays)
    assert all(e["options"]["expires"] for e in BEAT_SCHEDULE.values())  # a missed beat never piles up


def test_worker_knows_every_task() -> None:
    import infra.worker as worker

    names = set(worker.app.tasks)
    assert {f"{s.name}.relay_events" for s in SERVICES} <= names
    assert {"gateway.ping", "gateway.probe"} <= names
    for name, task in worker.app.tasks.items():
        if not name.startswith("celery."):
            assert task.acks_late and task.reject_on_worker_lost, name
    check_registry(worker.app)


def test_registry_check_refuses_bad_tasks() -> None:
    app = create_celery(PlatformSettings(redis_url="redis://127.0.0.1:1/0"))

    @app.task(name="ecg.fine")
    def fine() -> None: ...

    check_registry(app)

    @app.task(name="nameless_queue")
    def orphan() -> None: ...

    @app.task(name="pathology.forever", time_limit=LONGEST_TASK_SECONDS + 1)
    def forever() -> None: ...

    with pytest.raises(RuntimeError) as err:
        check_registry(app)
    assert "nameless_queue" in str(err.value)
    assert "pathology.forever" in str(err.value)
