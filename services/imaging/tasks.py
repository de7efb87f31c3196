"""Celery tasks of the imaging service (queue ``imaging``; names start with ``imaging.``; see common/tasks.py)."""

from __future__ import annotations

from common.tasks import register_relay_task

relay_events = register_relay_task("imaging")
