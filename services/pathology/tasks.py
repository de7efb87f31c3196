"""Celery tasks of the pathology service (queue ``pathology``; names start with ``pathology.``; see common/tasks.py)."""

from __future__ import annotations

from common.tasks import register_relay_task

relay_events = register_relay_task("pathology")
