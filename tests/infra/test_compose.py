"""infra/compose: the compose file parses and runs every process the Procfile starts, with health checks."""

from __future__ import annotations

from pathlib import Path

import yaml
from honcho.environ import parse_procfile

REPO = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((REPO / "infra" / "compose" / "docker-compose.yml").read_text())


def test_compose_names_every_procfile_process() -> None:
    services = _compose()["services"]
    procfile = parse_procfile((REPO / "Procfile").read_text()).processes
    assert set(procfile) <= set(services), f"missing in compose: {set(procfile) - set(services)}"
    for name in ("postgres", "redis", "minio", "coturn"):
        assert name in services


def test_every_long_running_service_has_a_health_check() -> None:
    for name, svc in _compose()["services"].items():
        if name in {"migrate", "coturn"}:
            continue
        assert "healthcheck" in svc, f"{name} has no health check"


def test_data_lives_in_volumes() -> None:
    compose = _compose()
    assert {"pgdata", "redisdata", "objects", "keys"} <= set(compose["volumes"])
    assert any("pgdata:" in v for v in compose["services"]["postgres"]["volumes"])
    assert any("objects:" in v for v in compose["services"]["minio"]["volumes"])


def test_production_secrets_are_required() -> None:
    env = _compose()["services"]["gateway"]["environment"]
    assert env["TH_ENV"] == "production"
    for key in ("INTERNAL_API_KEY", "PRESIGN_SECRET"):
        assert ":?" in env[key], f"{key} must be required, not defaulted"


def test_dockerfile_copies_what_the_processes_import() -> None:
    text = (REPO / "infra" / "compose" / "Dockerfile").read_text()
    for part in ("common", "gateway", "services", "infra/worker.py", "web/dist"):
        assert part in text
