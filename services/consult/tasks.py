"""Celery tasks of the consult service (queue ``consult``; names start with ``consult.``; see common/tasks.py)."""

from __future__ import annotations

from common.tasks import register_relay_task

relay_events = register_relay_task("consult")
