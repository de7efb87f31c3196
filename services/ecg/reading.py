"""Domain rules of reading: the worklist, claiming, the draft report, signing (immutable), addenda.

A signed report keeps a SHA-256 over its canonical content (measurements, statements, conclusion), the
recording, the signer and the signing time (``content_hash``); nothing of that changes afterwards (409 here,
and a trigger in the database behind it). Rendering the PDF and DICOM runs as a Celery task after signing
and after each addendum. Turnaround (received -> signed) goes to the bureau as ``ecg.report_signed``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from common.audit import AuditEntry, write
from common.auth import Principal, Role
from common.db import Database
from common.errors import Conflict, Forbidden, Invalid, NotFound
from common.events import record_event
from common.hashing import canonical_sha256
from common.signing import Addendum, SignIn
from services.ecg import grants, jobs
from services.ecg import repository as repo
from services.ecg import repository_reports as reports
from services.ecg.schemas import PRIORITIES, AddendumIn, Report, ReportDraftIn, Worklist
from services.ecg.settings import EcgSettings, ecg_settings

OPEN_STATUSES = ("new", "analysing", "ready", "in_review", "failed")
WORKLIST_STATUSES = (*OPEN_STATUSES, "signed")


def require_clinical(principal: Principal) -> None:
    if not principal.is_clinical:
        raise Forbidden("ECG reports are open to clinical roles only")


def require_reader(principal: Principal) -> None:
    if not principal.has_role(Role.SPECIALIST):
        raise Forbidden("reading ECGs needs the specialist role")


def _round(v: Any) -> Any:
    return round(float(v), 1) if isinstance(v, int | float) and not isinstance(v, bool) else v


# The report's measurement names, and where the analysis keeps each (first match wins).
MEASUREMENT_SOURCES: dict[str, tuple[str, ...]] = {
    "hr_bpm": ("hr_bpm", "mean_hr_bpm"), "pr_ms": ("pr_ms",), "qrs_ms": ("qrs_ms",), "qt_ms": ("qt_ms",),
    "qtc_ms": ("qtc_ms",), "qtcf_ms": ("qtc_fridericia_ms", "qtcf_ms"), "rr_ms": ("rr_ms", "rr_mean_ms"),
    "p_axis_deg": ("p_axis", "p_axis_deg"), "qrs_axis_deg": ("qrs_axis", "qrs_axis_deg"),
    "t_axis_deg": ("t_axis", "t_axis_deg"),
}


def machine_measurements(analysis: dict[str, Any] | None) -> dict[str, Any]:
    """The draft's starting measurements: what the machine measured (the reader confirms or edits)."""
    if not analysis:
        return {}
    parts = (analysis.get("intervals"), analysis.get("rr"), analysis.get("rhythm"))
    sources = [part for part in parts if isinstance(part, dict)]
    out: dict[str, Any] = {}
    for key, names in MEASUREMENT_SOURCES.items():
        for src in sources:
            value = next((src[n] for n in names if _number(src.get(n))), None)
            if value is not None:
                out[key] = _round(value)
                break
    return out


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# The analysis's own "machine-generated, awaiting physician confirmation" statement: it labels the machine
# reading and must never become one of the reader's statements (and so never be signed as the doctor's words).
DISCLAIMER_CODE = "machine_generated"


def is_disclaimer(statement: Any) -> bool:
    return isinstance(statement, dict) and statement.get("code") == DISCLAIMER_CODE


def without_disclaimer(statements: list[Any]) -> list[Any]:
    return [st for st in statements if not is_disclaimer(st)]


def machine_statements(analysis: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The draft's starting statements: the machine's interpretation, without its disclaimer."""
    out = []
    for st in (analysis or {}).get("statements") or []:
        if isinstance(st, dict) and not is_disclaimer(st):
            out.append({"code": st.get("code"), "zh": str(st.get("zh", "")), "en": str(st.get("en", "")),
                        "source": "machine"})
    return out


def content_hash(report_id: UUID, recording_id: UUID, measurements: dict[str, Any], statements: list[Any],
                 conclusion: str, signer_id: UUID, signer_name: str, signed_at: datetime) -> str:
    """SHA-256 over the canonical signed content; recomputable from the stored report."""
    body = {
        "report_id": str(report_id), "recording_id": str(recording_id), "measurements": measurements,
        "statements": statements, "conclusion": conclusion, "signer_id": str(signer_id),
        "signer_name": signer_name, "signed_at": signed_at.astimezone(UTC).isoformat(),
    }
    return canonical_sha256(body)


def verify(report: Report) -> bool:
    """Whether a signed report still matches its content hash."""
    if report.signed_at is None or report.content_hash is None or report.signed_by is None:
        return False
    return report.content_hash == content_hash(
        report.id, report.recording_id, report.measurements, report.statements, report.conclusion,
        report.signed_by, report.signer_name or "", report.signed_at,
    )


async def worklist(
    db: Database, principal: Principal, *, statuses: list[str] | None, priority: str | None, limit: int, offset: int
) -> Worklist:
    """The reading centre's work: critical first, then priority (stat, urgent, routine), then the oldest."""
    require_reader(principal)
    wanted = statuses or list(OPEN_STATUSES)
    bad = [x for x in wanted if x not in WORKLIST_STATUSES]
    if bad:
        raise Invalid(f"status must be among {', '.join(WORKLIST_STATUSES)}")
    if priority is not None and priority not in PRIORITIES:
        raise Invalid(f"priority must be one of {', '.join(PRIORITIES)}")
    limit = max(1, min(limit, 200))
    async with db.transaction(principal) as conn:
        items = await repo.worklist(conn, principal.visible_facility_ids, statuses=wanted, priority=priority,
                                    limit=limit, offset=max(0, offset))
    return Worklist(items=items, limit=limit, offset=offset)


async def claim(db: Database, principal: Principal, recording_id: UUID) -> Report:
    """Take a recording to read: a draft prefilled with the machine reading; the same reader again is a no-op."""
    require_clinical(principal)
    async with db.transaction(principal) as conn:
        rec = await repo.recording_facility(conn, recording_id, principal.visible_facility_ids)
        if rec is None:
            raise NotFound("no such recording")
        require_reader(principal)
        row = await reports.report_row(conn, recording_id, principal.visible_facility_ids, lock=True)
        if row is not None:
            if row["signed_at"] is not None:
                raise Conflict("this recording's report is already signed; add an addendum instead")
            if row["reader_id"] != principal.user_id:
                raise Conflict(f"{row['reader_name']} is already reading this recording")
            return reports.as_report(row)
        analysis = await repo.analysis_of(conn, recording_id)
        report = await reports.insert_report(conn, {
            "id": uuid.uuid4(), "recording_id": recording_id, "facility_id": rec["facility_id"],
            "reader_id": principal.user_id, "reader_name": principal.display_name,
            "measurements": machine_measurements(analysis), "statements": machine_statements(analysis),
        })
        await conn.execute("UPDATE ecg.recordings SET status = 'in_review' WHERE id = $1", recording_id)
    return report


async def get_report(db: Database, principal: Principal, recording_id: UUID) -> Report:
    require_clinical(principal)
    report = await grants.read_with_grants(db, principal, recording_id,
                                           lambda conn, visible: reports.get_report(conn, recording_id, visible))
    if report is None:
        raise NotFound("this recording has no report yet")
    return report


async def _visible(conn: Any, principal: Principal, recording_id: UUID) -> Any:
    """The recording row (locked) if the caller may see it: 404 first, then the reader role (403)."""
    require_clinical(principal)
    rec = await repo.recording_facility(conn, recording_id, principal.visible_facility_ids)
    if rec is None:
        raise NotFound("no such recording")
    require_reader(principal)
    return rec


async def _own_draft(conn: Any, principal: Principal, recording_id: UUID) -> tuple[Any, Any]:
    """(recording, report) rows of the caller's own unsigned draft, both locked."""
    rec = await _visible(conn, principal, recording_id)
    row = await reports.report_row(conn, recording_id, principal.visible_facility_ids, lock=True)
    if row is None:
        raise Conflict("claim the recording before editing its report")
    if row["signed_at"] is not None:
        raise Conflict("the report is signed and can no longer change; add an addendum")
    if row["reader_id"] != principal.user_id:
        raise Forbidden(f"only {row['reader_name']}, who claimed this recording, may edit or sign its report")
    return rec, row


async def save_draft(db: Database, principal: Principal, recording_id: UUID, body: ReportDraftIn) -> Report:
    changes: dict[str, Any] = {}
    if body.measurements is not None:
        changes["measurements"] = body.measurements
    if body.statements is not None:
        changes["statements"] = without_disclaimer([st.model_dump() for st in body.statements])
    if body.conclusion is not None:
        changes["conclusion"] = body.conclusion
    async with db.transaction(principal) as conn:
        _, row = await _own_draft(conn, principal, recording_id)
        updated = await reports.update_draft(conn, row["id"], body.version, changes)
        if updated is None:
            raise Conflict(f"the draft changed meanwhile (now at version {row['version']}); reload it")
    return updated


async def sign(db: Database, principal: Principal, recording_id: UUID, body: SignIn,
               settings: EcgSettings | None = None) -> Report:
    """Sign the draft as it stands at ``version``; immutable from here on."""
    s = settings or ecg_settings()
    async with db.transaction(principal) as conn:
        rec, row = await _own_draft(conn, principal, recording_id)
        if row["version"] != body.version:
            raise Conflict(f"the draft changed meanwhile (now at version {row['version']}); review it again")
        # a draft opened before the disclaimer was kept out of drafts may still hold it: never sign it
        statements = without_disclaimer(list(row["statements"]))
        if not (statements or row["conclusion"].strip()):
            raise Invalid("a report needs at least one statement or a conclusion before it is signed")
        signed_at = datetime.now(UTC)
        minutes = (signed_at - rec["received_at"]).total_seconds() / 60
        on_time = minutes <= s.turnaround_target(rec["priority"])
        digest = content_hash(row["id"], recording_id, row["measurements"], statements, row["conclusion"],
                              principal.user_id, principal.display_name, signed_at)
        report = await reports.sign(
            conn, row["id"], version=body.version, signed_at=signed_at, signer_id=principal.user_id,
            signer_name=principal.display_name, content_hash=digest, turnaround_minutes=round(minutes, 2),
            on_time=on_time, statements=statements if len(statements) != len(row["statements"]) else None,
        )
        assert report is not None  # locked and checked above
        await conn.execute("UPDATE ecg.recordings SET status = 'signed', signed_at = $2 WHERE id = $1",
                           recording_id, signed_at)
        await record_event(
            conn, "ecg", "ecg.report_signed", facility_id=rec["facility_id"], subject_type="recording",
            subject_id=recording_id,
            payload={"on_time": on_time, "turnaround_minutes": round(minutes, 2), "priority": rec["priority"],
                     "critical": bool(rec["critical"]), "reader_facility_id": str(principal.facility_id)},
        )
        await write(conn, AuditEntry.for_principal(
            principal, source="ecg", action="ecg.report.sign", outcome="success", object_type="ecg_report",
            object_id=str(report.id), detail={"recording_id": str(recording_id), "content_hash": digest},
        ))
    await jobs.send(jobs.RENDER, recording_id)
    return report


async def add_addendum(db: Database, principal: Principal, recording_id: UUID, body: AddendumIn) -> Addendum:
    """An addendum to a signed report (by a reader who may see it); the PDF is rendered again."""
    async with db.transaction(principal) as conn:
        await _visible(conn, principal, recording_id)
        row = await reports.report_row(conn, recording_id, principal.visible_facility_ids, lock=True)
        if row is None:
            raise Conflict("there is no signed report to add to")
        if row["signed_at"] is None:
            raise Conflict("the report is not signed yet: edit the draft instead of adding an addendum")
        created = datetime.now(UTC)
        digest = canonical_sha256({
            "report_hash": row["content_hash"], "text": body.text, "author_id": str(principal.user_id),
            "at": created.isoformat(),
        })
        addendum = await reports.insert_addendum(conn, {
            "id": uuid.uuid4(), "report_id": row["id"], "facility_id": row["facility_id"],
            "author_id": principal.user_id, "author_name": principal.display_name, "text": body.text,
            "content_hash": digest,
        })
        await write(conn, AuditEntry.for_principal(
            principal, source="ecg", action="ecg.report.addendum", outcome="success", object_type="ecg_report",
            object_id=str(row["id"]), detail={"recording_id": str(recording_id), "addendum_id": str(addendum.id)},
        ))
    await jobs.send(jobs.RENDER, recording_id)
    return addendum


async def rendered_key(db: Database, principal: Principal, recording_id: UUID, kind: str) -> str:
    """The stored PDF or DICOM of the signed report; 409 while it is still being rendered."""
    require_clinical(principal)
    keys = await grants.read_with_grants(db, principal, recording_id,
                                         lambda conn, visible: reports.rendered_keys(conn, recording_id, visible))
    if keys is None or not keys[2]:
        raise NotFound("this recording has no signed report")
    key = keys[0] if kind == "pdf" else keys[1]
    if not key:
        raise Conflict("the signed report is still being rendered; retry in a few seconds",
                       headers={"Retry-After": "3"}, code="not_ready")
    return key
