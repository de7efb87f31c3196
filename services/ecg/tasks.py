"""Celery tasks of the ecg service (queue ``ecg``; names start with ``ecg.``; see common/tasks.py)."""

from __future__ import annotations

from common.tasks import register_relay_task

relay_events = register_relay_task("ecg")
