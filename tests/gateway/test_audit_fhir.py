"""The FHIR AuditEvent mapping of audit rows (no database: rows are built here)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from gateway.audit.fhir import audit_bundle, audit_event
from gateway.audit.models import AuditRecord


def _row(**kw: Any) -> AuditRecord:
    base: dict[str, Any] = {
        "seq": 7,
        "occurred_at": datetime(2026, 3, 1, 8, 30, 0, 123456, tzinfo=UTC),
        "source": "imaging",
        "actor_id": uuid.uuid4(),
        "actor_name": "doctor_a",
        "actor_role": "township_doctor",
        "facility_id": uuid.uuid4(),
        "action": "GET /api/imaging/studies/{study_id}",
        "object_type": "imaging",
        "object_id": "study_id=1.2.3",
        "outcome": "success",
        "status_code": 200,
        "client_addr": "10.0.0.8",
        "request_id": "abc",
        "detail": {},
        "hash": hashlib.sha256(b"x").hexdigest(),
    }
    base.update(kw)
    return AuditRecord.model_validate(base)


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("GET /api/imaging/studies/{study_id}", "R"),
        ("HEAD /wado", "R"),
        ("POST /dicom-web/studies", "C"),
        ("PUT /api/x/{id}", "U"),
        ("PATCH /api/x/{id}", "U"),
        ("DELETE /api/x/{id}", "D"),
        ("OPTIONS /api/x", "E"),
        ("auth.login", "E"),
        ("admin.user.create", "C"),
        ("admin.facility.update", "U"),
        ("admin.user.deactivate", "U"),
        ("audit.export", "E"),
    ],
)
def test_action_codes(action: str, expected: str) -> None:
    assert audit_event(_row(action=action)).action == expected


@pytest.mark.parametrize(
    ("outcome", "status", "expected"),
    [
        ("success", 200, "0"),
        ("denied", 404, "4"),
        ("denied", 401, "4"),
        ("failure", 422, "4"),
        ("failure", 500, "8"),
        ("failure", 502, "8"),
        ("failure", 503, "12"),
        ("failure", None, "4"),
    ],
)
def test_outcome_codes(outcome: str, status: int | None, expected: str) -> None:
    assert audit_event(_row(outcome=outcome, status_code=status)).outcome == expected


def test_an_anonymous_failed_login_still_validates() -> None:
    event = audit_event(
        _row(
            actor_id=None,
            actor_name=None,
            actor_role=None,
            facility_id=None,
            client_addr=None,
            action="auth.login",
            outcome="failure",
            status_code=401,
            object_type=None,
            object_id=None,
            detail={"reason": "unknown_user"},
        )
    )
    assert event.agent[0].who.display == "unauthenticated" and event.agent[0].requestor is True
    assert "unknown_user" in (event.outcomeDesc or "")


def test_bundle_round_trips() -> None:
    bundle = audit_bundle(
        [_row(seq=2), _row(seq=1)],
        self_url="http://x/api/audit/export",
        next_url="http://x/api/audit/export?before_seq=1",
    )
    again = Bundle.model_validate_json(bundle.model_dump_json(exclude_none=True))
    assert [e.resource.id for e in again.entry or []] == ["th-audit-2", "th-audit-1"]
    event = (again.entry or [])[0].resource
    assert event.recorded.isoformat().startswith("2026-03-01T08:30:00.123456")
    details = {d.type: d for d in event.entity[0].detail}
    assert details["request-id"].valueString == "abc"
    assert details["chain-hash"].valueBase64Binary
    assert event.agent[0].location.identifier.system == "urn:telehealth:facility"
