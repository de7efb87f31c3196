"""Celery tasks of the health_mgmt service (queue ``health_mgmt``, names ``health_mgmt.*``; see common/tasks.py)."""

from __future__ import annotations

from common.tasks import register_relay_task

relay_events = register_relay_task("health_mgmt")
