"""The audit log in FHIR R4 shape: ``AuditEvent`` resources in a ``Bundle`` (IHE ATNA vocabulary).

Built and validated with ``fhir.resources`` (its R4B models: AuditEvent and Bundle are unchanged from R4).

Mapping of a row:

* ``type``: HTTP requests are ``rest`` (audit-event-type) with the RESTful interaction as subtype; sign-in
  events are DICOM 110114 *User Authentication* (subtype 110122 Login / 110123 Logout); account changes
  110137 *User Security Attributes Changed*; exports 110106 *Export*; anything else 110100 *Application
  Activity*.
* ``action``: from the HTTP method (POST C, GET/HEAD R, PUT/PATCH U, DELETE D, otherwise E); for named
  actions from their verb (``*.create`` C, updates U, sign-in and exports E).
* ``outcome``: success 0; denied or a failure below 500: 4 (minor); 5xx: 8 (serious); 503: 12 (major, the
  service was unavailable).
* ``agent``: the actor (user id, name, roles, facility as location, client address), requestor.
* ``source.observer``: the service that wrote the row. ``entity``: the object acted on, with the request
  id, the status, the details and the row's chain hash.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle

from gateway.audit.models import AuditRecord

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
URN = "urn:telehealth"

_METHOD_ACTION = {"POST": "C", "GET": "R", "HEAD": "R", "PUT": "U", "PATCH": "U", "DELETE": "D"}
_METHOD_INTERACTION = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _http(action: str) -> tuple[str, str] | None:
    method, _, route = action.partition(" ")
    if method in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "WS"} and route.startswith("/"):
        return method, route
    return None


def fhir_action(row: AuditRecord) -> str:
    http = _http(row.action)
    if http:
        return _METHOD_ACTION.get(http[0], "E")
    verb = row.action.rsplit(".", 1)[-1]
    if verb == "create":
        return "C"
    if verb in {"update", "deactivate", "reset_password", "unlock", "enrol_totp"}:
        return "U"
    if verb == "delete":
        return "D"
    if verb in {"read", "search"}:
        return "R"
    return "E"


def fhir_outcome(row: AuditRecord) -> str:
    status = row.status_code or 0
    if row.outcome == "success" and status < 400:
        return "0"
    if status == 503:
        return "12"
    if status >= 500:
        return "8"
    return "4"


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _type_and_subtype(row: AuditRecord) -> tuple[dict[str, str], list[dict[str, str]]]:
    http = _http(row.action)
    if http:
        method, route = http
        interaction = _METHOD_INTERACTION.get(method) or ("read" if "{" in route else "search-type")
        return _coding(EVENT_TYPE, "rest", "RESTful Operation"), [_coding(RESTFUL, interaction, interaction)]
    if row.action.startswith("auth."):
        sub = _coding(DCM, "110123", "Logout") if row.action == "auth.logout" else _coding(DCM, "110122", "Login")
        return _coding(DCM, "110114", "User Authentication"), [sub]
    if row.action.startswith("admin.user."):
        return _coding(DCM, "110137", "User Security Attributes Changed"), []
    if row.action.endswith(".export"):
        return _coding(DCM, "110106", "Export"), []
    return _coding(DCM, "110100", "Application Activity"), []


def _agent(row: AuditRecord) -> dict[str, Any]:
    who: dict[str, Any] = {"display": row.actor_name or "unauthenticated"}
    if row.actor_id is not None:
        who["identifier"] = {"system": f"{URN}:user", "value": str(row.actor_id)}
    agent: dict[str, Any] = {
        "type": {"coding": [_coding(AGENT_TYPE, "humanuser", "human user")]},
        "who": who,
        "requestor": True,
    }
    if row.actor_name:
        agent["name"] = row.actor_name
    if row.actor_role:
        agent["role"] = [
            {"coding": [{"system": f"{URN}:role", "code": r}], "text": r} for r in row.actor_role.split(",") if r
        ]
    if row.facility_id is not None:
        agent["location"] = {"identifier": {"system": f"{URN}:facility", "value": str(row.facility_id)}}
    if row.client_addr:
        agent["network"] = {"address": row.client_addr, "type": "2"}  # 2 = IP address
    return agent


def _entity(row: AuditRecord) -> dict[str, Any]:
    details: list[dict[str, Any]] = [
        {"type": "chain-hash", "valueBase64Binary": base64.b64encode(bytes.fromhex(row.hash)).decode()}
    ]
    if row.request_id:
        details.append({"type": "request-id", "valueString": row.request_id})
    if row.status_code is not None:
        details.append({"type": "http-status", "valueString": str(row.status_code)})
    if row.detail:
        details.append({"type": "detail", "valueString": orjson.dumps(row.detail).decode()})
    entity: dict[str, Any] = {"type": _coding(ENTITY_TYPE, "2", "System Object"), "detail": details}
    if row.object_type or row.object_id:
        entity["what"] = {
            "identifier": {"system": f"{URN}:{row.object_type or 'object'}", "value": row.object_id or ""},
            "display": row.object_type,
        }
        if not row.object_id:
            del entity["what"]["identifier"]
    return entity


def audit_event(row: AuditRecord) -> AuditEvent:
    """The row as a validated FHIR AuditEvent."""
    event_type, subtype = _type_and_subtype(row)
    outcome_text = f"{row.action}: {row.outcome}" + (f" (HTTP {row.status_code})" if row.status_code else "")
    reason = row.detail.get("reason") if isinstance(row.detail, dict) else None
    if reason:
        outcome_text += f"; {reason}"
    return AuditEvent.model_validate(
        {
            "id": f"th-audit-{row.seq}",
            "type": event_type,
            "subtype": subtype or None,
            "action": fhir_action(row),
            "recorded": row.occurred_at.astimezone(UTC).isoformat(),
            "outcome": fhir_outcome(row),
            "outcomeDesc": outcome_text,
            "agent": [_agent(row)],
            "source": {
                "site": "telehealth",
                "observer": {
                    "display": f"telehealth-{row.source}",
                    "identifier": {"system": f"{URN}:service", "value": row.source},
                },
                "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
            },
            "entity": [_entity(row)],
        }
    )


def audit_bundle(rows: list[AuditRecord], *, next_url: str | None = None, self_url: str | None = None) -> Bundle:
    """A ``collection`` Bundle of AuditEvents, with ``next`` to page on."""
    links = [{"relation": "self", "url": self_url}] if self_url else []
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return Bundle.model_validate(
        {
            "type": "collection",
            "timestamp": datetime.now(UTC).isoformat(),
            "link": links or None,
            "entry": [{"resource": audit_event(r)} for r in rows] or None,
        }
    )
