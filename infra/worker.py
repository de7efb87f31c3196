"""Celery entry point for every queue of the platform.

    celery -A infra.worker worker -Q gateway,imaging,ecg,pathology,consult,health_mgmt
    celery -A infra.worker beat

Imports the app (common/tasks.py) and every service's tasks module, so one worker process knows every task
and the beat knows the whole schedule. A worker refuses to start when a task breaks the conventions.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from celery.signals import worker_init

from common.tasks import QUEUES, celery_app, check_registry

TASK_MODULES: tuple[str, ...] = tuple(
    name
    for name in ("gateway.tasks", *(f"services.{q}.tasks" for q in QUEUES if q != "gateway"))
    if importlib.util.find_spec(name) is not None
)

for _module in TASK_MODULES:
    importlib.import_module(_module)

app = celery_app
# beat keeps its schedule state under TH_VAR_DIR, opened before any beat signal fires: make the directory now.
Path(app.conf.beat_schedule_filename).parent.mkdir(parents=True, exist_ok=True)


@worker_init.connect  # type: ignore[untyped-decorator]
def _check(**_: Any) -> None:
    check_registry(app)
