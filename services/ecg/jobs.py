"""Sending the ecg service's Celery work (ids only, after the transaction committed)."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

log = logging.getLogger("telehealth.ecg.jobs")

ANALYZE = "ecg.analyze_recording"
RENDER = "ecg.render_report"


def _send(name: str, recording_id: UUID) -> None:
    from common.tasks import celery_app

    celery_app.send_task(name, args=[str(recording_id)])


async def send(name: str, recording_id: UUID) -> bool:
    """Queue ``name`` for ``recording_id``; False (logged) when the broker is down: the sweeper re-sends."""
    try:
        await asyncio.wait_for(asyncio.to_thread(_send, name, recording_id), timeout=10)
        return True
    except Exception:
        log.warning("queueing a task failed; the sweeper will retry", extra={"task": name,
                                                                            "recording_id": str(recording_id)})
        return False
