"""Rooms live in one registry per consult process: a second registry in the same process is refused, and a
service started with several workers says loudly that sessions must be pinned (docs/consult.md "Scaling out")."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from services.consult.rooms.registry import (
    RoomRegistry,
    claim_process_registry,
    configured_workers,
    release_process_registry,
    warn_if_several_workers,
)
from services.consult.rooms.settings import RoomSettings


def test_a_second_registry_in_one_process_is_refused(tmp_path: Path) -> None:
    first, second = (RoomRegistry(RoomSettings(), store=None, db=None, recording_dir=tmp_path) for _ in range(2))
    claim_process_registry(first)
    try:
        claim_process_registry(first)  # the same one again is fine
        with pytest.raises(RuntimeError, match="already running"):
            claim_process_registry(second)
    finally:
        release_process_registry(first)
    claim_process_registry(second)  # after the first stopped
    release_process_registry(second)


@pytest.mark.parametrize(("argv", "env", "workers"), [
    (["uvicorn", "services.consult.app:app", "--port", "8000"], {}, 1),
    (["uvicorn", "services.consult.app:app", "--workers", "4"], {}, 4),
    (["uvicorn", "services.consult.app:app", "--workers=2"], {}, 2),
    (["gunicorn", "-w", "3", "services.consult.app:app"], {}, 3),
    (["uvicorn", "services.consult.app:app"], {"WEB_CONCURRENCY": "2"}, 2),
    (["uvicorn", "services.consult.app:app"], {"WEB_CONCURRENCY": "x"}, 1),
])
def test_several_workers_are_named(argv: list[str], env: dict[str, str], workers: int,
                                   caplog: pytest.LogCaptureFixture) -> None:
    assert configured_workers(argv, env) == workers
    with caplog.at_level(logging.WARNING, logger="telehealth.consult.rooms"):
        warn_if_several_workers(argv, env)
    warned = [r for r in caplog.records if "pin" in r.getMessage()]
    assert bool(warned) == (workers > 1)
    if warned:
        assert f"{workers} workers" in warned[0].getMessage() and "session id" in warned[0].getMessage()
