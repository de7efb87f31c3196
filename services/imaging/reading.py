"""Domain rules of imaging reading: the worklist, priority, claim and assign, the draft report, signing
(immutable), critical findings, addenda. Follows the ECG reading workflow (services/ecg/reading.py).

Who: the study's owner facility (the requester) sets the priority and reads the signed report back;
specialists of a facility that may see the study (its reading centre, or the owner itself) read and write.
A signed report keeps a SHA-256 over its content, the signer and the signing time (``content_hash``); it never
changes afterwards (409 here, a trigger in the database behind it); addenda may follow. Rendering the PDF and
the DICOM Encapsulated PDF (stored into the study through ``store_instance``) runs as the Celery task
``imaging.render_report`` after signing and after each addendum. Turnaround (received -> signed) goes to the
bureau as ``imaging.report_signed``; a critical finding as ``imaging.critical_finding`` to the requester.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
from pydicom.uid import generate_uid

from common.audit import AuditEntry, write
from common.auth import Principal, Role
from common.db import Database
from common.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound
from common.events import record_event
from common.hashing import canonical_sha256
from common.signing import Addendum, SignIn
from services.imaging import reading_alerts
from services.imaging import repository_reading as repo
from services.imaging.index import valid_uid
from services.imaging.reading_schemas import (
    PRIORITIES,
    STATUSES,
    AddendumIn,
    AssignIn,
    CriticalAlert,
    PriorityIn,
    Reader,
    Report,
    ReportDraftIn,
    Worklist,
    WorklistItem,
)
from services.imaging.reading_templates import by_key, template_for
from services.imaging.service import visible_facilities

log = logging.getLogger("telehealth.imaging.reading")
RENDER_TASK = "imaging.render_report"
OPEN_STATUSES = ("new", "assigned", "in_progress", "reported")
# Turnaround targets (received -> signed), minutes, by priority: what on_time in imaging.report_signed means.
TURNAROUND_TARGET_MINUTES = {"stat": 60.0, "urgent": 240.0, "routine": 24 * 60.0}
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# A rendering not done this long after signing is queued again when someone asks for the PDF.
RENDER_RETRY_AFTER = timedelta(seconds=60)


def require_clinical(principal: Principal) -> None:
    if not principal.is_clinical:
        raise Forbidden("imaging reports are open to clinical roles only")


def require_specialist(principal: Principal) -> None:
    if not principal.has_role(Role.SPECIALIST):
        raise Forbidden("reading studies needs the specialist role")


def content_hash(report_id: UUID, study_uid: str, modality: str, template: str, findings: str, impression: str,
                 critical: bool, critical_note: str, signer_id: UUID, signer_name: str, signed_at: datetime) -> str:
    """SHA-256 over the canonical signed content; recomputable from the stored report."""
    return canonical_sha256({
        "report_id": str(report_id), "study_instance_uid": study_uid, "modality": modality, "template": template,
        "findings": findings, "impression": impression, "critical": critical, "critical_note": critical_note,
        "signer_id": str(signer_id), "signer_name": signer_name, "signed_at": signed_at.astimezone(UTC).isoformat(),
    })


def verify(report: Report) -> bool:
    """Whether a signed report still matches its content hash."""
    if report.signed_at is None or report.content_hash is None or report.signed_by is None:
        return False
    return report.content_hash == content_hash(
        report.id, report.study_instance_uid, report.modality, report.template, report.findings, report.impression,
        report.critical, report.critical_note, report.signed_by, report.signer_name or "", report.signed_at,
    )


async def _queue_render(study_ref: UUID) -> bool:
    """Queue the rendering (ids only, after the commit); False (logged) when the broker is down."""
    def send() -> None:
        from common.tasks import celery_app

        celery_app.send_task(RENDER_TASK, args=[str(study_ref)])

    try:
        await asyncio.wait_for(asyncio.to_thread(send), timeout=10)
        return True
    except Exception:
        log.warning("queueing the report rendering failed; asking for the PDF queues it again",
                    extra={"study_ref": str(study_ref)})
        return False


async def _study(conn: Any, principal: Principal, study_uid: str, *, lock: bool = False) -> Any:
    """The visible study (404 exactly like a missing one otherwise)."""
    require_clinical(principal)
    row = await repo.study(conn, study_uid, visible_facilities(principal), lock=lock) if valid_uid(study_uid) \
        else None
    if row is None:
        raise NotFound("no such study")
    return row


def _local_day(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=LOCAL_TZ)


async def worklist(
    db: Database, principal: Principal, *, statuses: list[str] | None = None, priority: str | None = None,
    modality: str | None = None, facility_id: UUID | None = None, date_from: date | None = None,
    date_to: date | None = None, mine: bool = False, limit: int = 50, offset: int = 0,
) -> Worklist:
    """The reading facility's work: studies of the facilities it reads for (and its own), STAT first, then
    urgent, then routine, the oldest first. Dates are received days in Asia/Shanghai, both ends included."""
    require_specialist(principal)
    wanted = statuses or list(OPEN_STATUSES)
    if any(s not in STATUSES for s in wanted):
        raise Invalid(f"status must be among {', '.join(STATUSES)}")
    if priority is not None and priority not in PRIORITIES:
        raise Invalid(f"priority must be one of {', '.join(PRIORITIES)}")
    limit = max(1, min(limit, 200))
    async with db.transaction(principal) as conn:
        await repo.note_reader(conn, principal.user_id, principal.facility_id, principal.display_name)
        items = await repo.worklist(
            conn, visible_facilities(principal), statuses=wanted, priority=priority,
            modality=modality.upper() if modality else None, requesting=facility_id,
            received_from=_local_day(date_from) if date_from else None,
            received_to=_local_day(date_to + timedelta(days=1)) if date_to else None,
            assignee=principal.user_id if mine else None, limit=limit, offset=max(0, offset),
        )
    return Worklist(items=items, limit=limit, offset=offset)


async def readers(db: Database, principal: Principal) -> list[Reader]:
    """The specialists of the caller's facility the reading API knows (each has opened the worklist)."""
    require_specialist(principal)
    async with db.transaction(principal) as conn:
        await repo.note_reader(conn, principal.user_id, principal.facility_id, principal.display_name)
        rows = await repo.readers(conn, principal.facility_id)
    return [Reader(user_id=r["user_id"], name=r["name"]) for r in rows]


async def set_priority(db: Database, principal: Principal, study_uid: str, body: PriorityIn) -> WorklistItem:
    """The requester (or a reader) sets STAT / urgent / routine and the clinical question."""
    async with db.transaction(principal) as conn:
        st = await _study(conn, principal, study_uid, lock=True)
        if st["status"] == "signed":
            raise Conflict("the study's report is signed already")
        changes: dict[str, Any] = {"priority": body.priority}
        if body.clinical_question is not None:
            changes["clinical_question"] = body.clinical_question
        await repo.upsert_item(conn, st["id"], st["facility_id"], **changes)
        return await repo.worklist_item(conn, st["id"], st["facility_id"])


def upload_priority(value: str | None) -> str | None:
    """The ``priority`` query parameter of STOW-RS (checked before the body is read): 400 when unknown."""
    if value is None or value == "":
        return None
    if value.lower() not in PRIORITIES:
        raise BadRequest(f"priority must be one of {', '.join(PRIORITIES)}")
    return value.lower()


async def set_upload_priority(db: Database, principal: Principal, priority: str, stow_answer: bytes) -> None:
    """After a STOW-RS upload with ``?priority=``: the reading priority of each study it stored instances of
    (a study already signed keeps its report; that is not an error of the upload)."""
    studies: set[str] = set()
    for item in (orjson.loads(stow_answer).get("00081199") or {}).get("Value") or []:
        url = ((item.get("00081190") or {}).get("Value") or [""])[0]
        if "/studies/" in url:
            studies.add(url.split("/studies/", 1)[1].split("/", 1)[0])
    for study_uid in sorted(studies):
        try:
            await set_priority(db, principal, study_uid, PriorityIn(priority=priority))  # type: ignore[arg-type]
        except (Conflict, NotFound):
            log.info("upload priority not applied", extra={"reason": "signed or not visible"})


async def assign(db: Database, principal: Principal, study_uid: str, body: AssignIn) -> WorklistItem:
    """Give the study to a named specialist of the caller's facility (an unsigned draft moves with it)."""
    async with db.transaction(principal) as conn:
        st = await _study(conn, principal, study_uid, lock=True)
        require_specialist(principal)
        await repo.note_reader(conn, principal.user_id, principal.facility_id, principal.display_name)
        target = next((r for r in await repo.readers(conn, principal.facility_id) if r["user_id"] == body.user_id),
                      None)
        if target is None:
            raise Invalid("user_id: not a specialist of your facility known to the reading service")
        if st["status"] == "signed":
            raise Conflict("the study's report is signed already")
        report = await repo.report_row(conn, st["id"], lock=True)
        if report is not None:
            await repo.reassign_draft(conn, st["id"], target["user_id"], target["name"])
        await repo.upsert_item(
            conn, st["id"], st["facility_id"], assignee_id=target["user_id"], assignee_name=target["name"],
            assigned_at=datetime.now(UTC), assigned_by=principal.user_id, reading_facility_id=principal.facility_id,
            status="in_progress" if report is not None else "assigned",
        )
        await write(conn, AuditEntry.for_principal(
            principal, source="imaging", action="imaging.reading.assign", outcome="success",
            object_type="imaging_study", object_id=str(st["id"]), detail={"assignee": str(target["user_id"])},
        ))
        return await repo.worklist_item(conn, st["id"], st["facility_id"])


async def claim(db: Database, principal: Principal, study_uid: str) -> Report:
    """Take the study to read: a draft from the modality's template; the same reader again is a no-op."""
    async with db.transaction(principal) as conn:
        st = await _study(conn, principal, study_uid, lock=True)
        require_specialist(principal)
        await repo.note_reader(conn, principal.user_id, principal.facility_id, principal.display_name)
        row = await repo.report_row(conn, st["id"], lock=True)
        if row is not None:
            if row["signed_at"] is not None:
                raise Conflict("this study's report is already signed; add an addendum instead")
            if row["reader_id"] != principal.user_id:
                raise Conflict(f"{row['reader_name']} is already reading this study")
            return repo.as_report(row)
        if st["assignee_id"] is not None and st["assignee_id"] != principal.user_id:
            raise Conflict(f"this study is assigned to {st['assignee_name']}")
        template, modality = template_for(st["modalities"])
        row = await repo.insert_report(conn, {
            "id": uuid.uuid4(), "study_ref": st["id"], "facility_id": st["facility_id"],
            "reading_facility_id": principal.facility_id, "modality": modality, "template": template.key,
            "reader_id": principal.user_id, "reader_name": principal.display_name,
            "findings": template.findings, "impression": template.impression,
        })
        await repo.upsert_item(
            conn, st["id"], st["facility_id"], status="in_progress", assignee_id=principal.user_id,
            assignee_name=principal.display_name, assigned_at=datetime.now(UTC), assigned_by=principal.user_id,
            reading_facility_id=principal.facility_id,
        )
    return repo.as_report(row)


async def get_report(db: Database, principal: Principal, study_uid: str) -> Report:
    """The report with its addenda: readers see the draft; the requester sees it once signed."""
    async with db.transaction(principal) as conn:
        st = await _study(conn, principal, study_uid)
        row = await repo.report_row(conn, st["id"])
        if row is None or (row["signed_at"] is None and not principal.has_role(Role.SPECIALIST)):
            raise NotFound("this study has no signed report yet")
        return repo.as_report(row, await repo.addenda_of(conn, row["id"]))


async def _own_draft(conn: Any, principal: Principal, study_uid: str) -> tuple[Any, Any]:
    st = await _study(conn, principal, study_uid, lock=True)
    require_specialist(principal)
    row = await repo.report_row(conn, st["id"], lock=True)
    if row is None:
        raise Conflict("claim the study before editing its report")
    if row["signed_at"] is not None:
        raise Conflict("the report is signed and can no longer change; add an addendum")
    if row["reader_id"] != principal.user_id:
        raise Forbidden(f"only {row['reader_name']}, who is reading this study, may edit or sign its report")
    return st, row


async def _raise_critical(conn: Any, principal: Principal, st: Any, row: Any, *, signed: bool) -> CriticalAlert | None:
    """The requesting facility is told of a critical finding, once per report: the event, and the alert
    (reading_alerts.py) that the caller publishes after the commit."""
    alert = await reading_alerts.raise_alert(conn, principal, st, row, signed=signed)
    await record_event(
        conn, "imaging", "imaging.critical_finding", facility_id=st["facility_id"], subject_type="study",
        subject_id=st["id"],
        payload={"report_id": str(row["id"]), "modality": row["modality"], "priority": st["priority"],
                 "signed": signed, "reading_facility_id": str(principal.facility_id)},
    )
    await write(conn, AuditEntry.for_principal(
        principal, source="imaging", action="imaging.report.critical_finding", outcome="success",
        object_type="imaging_report", object_id=str(row["id"]), detail={"study_ref": str(st["id"])},
    ))
    return alert


async def save_draft(db: Database, principal: Principal, study_uid: str, body: ReportDraftIn,
                     redis: Any = None) -> Report:
    changes: dict[str, Any] = {k: v for k, v in body.model_dump(include={"findings", "impression", "critical",
                                                                           "critical_note"}).items() if v is not None}
    async with db.transaction(principal) as conn:
        st, row = await _own_draft(conn, principal, study_uid)
        raise_now = bool(changes.get("critical")) and row["critical_raised_at"] is None
        if raise_now:
            changes["critical_raised_at"] = datetime.now(UTC)
        updated = await repo.update_draft(conn, row["id"], body.version, changes)
        if updated is None:
            raise Conflict(f"the draft changed meanwhile (now at version {row['version']}); reload it")
        alert = await _raise_critical(conn, principal, st, updated, signed=False) if raise_now else None
        if body.ready is not None:  # written (awaiting the signature) or back to work
            await repo.upsert_item(conn, st["id"], st["facility_id"],
                                   status="reported" if body.ready else "in_progress")
    await reading_alerts.deliver(db, redis, principal, alert)
    return repo.as_report(updated)


async def sign(db: Database, principal: Principal, study_uid: str, body: SignIn, redis: Any = None) -> Report:
    """Sign the draft as it stands at ``version``; immutable from here on."""
    async with db.transaction(principal) as conn:
        st, row = await _own_draft(conn, principal, study_uid)
        if row["version"] != body.version:
            raise Conflict(f"the draft changed meanwhile (now at version {row['version']}); review it again")
        template = by_key(row["template"])
        if not row["impression"].strip() or row["impression"].strip() == template.impression.strip():
            raise Invalid("write the impression before signing")
        signed_at = datetime.now(UTC)
        minutes = (signed_at - st["received_at"]).total_seconds() / 60
        on_time = minutes <= TURNAROUND_TARGET_MINUTES[st["priority"]]
        digest = content_hash(row["id"], st["study_instance_uid"], row["modality"], row["template"],
                              row["findings"], row["impression"], row["critical"], row["critical_note"],
                              principal.user_id, principal.display_name, signed_at)
        raise_now = row["critical"] and row["critical_raised_at"] is None
        signed = await repo.sign(
            conn, row["id"], version=body.version, signed_at=signed_at, signer_id=principal.user_id,
            signer_name=principal.display_name, content_hash=digest, turnaround_minutes=round(minutes, 2),
            on_time=on_time, series_uid=generate_uid(), critical_raised_at=signed_at if raise_now else None,
        )
        assert signed is not None  # locked and checked above
        await repo.upsert_item(conn, st["id"], st["facility_id"], status="signed")
        alert = await _raise_critical(conn, principal, st, signed, signed=True) if raise_now else None
        await record_event(
            conn, "imaging", "imaging.report_signed", facility_id=st["facility_id"], subject_type="study",
            subject_id=st["id"],
            payload={"on_time": on_time, "turnaround_minutes": round(minutes, 2), "priority": st["priority"],
                     "modality": row["modality"], "critical": bool(row["critical"]),
                     "reading_facility_id": str(principal.facility_id)},
        )
        await write(conn, AuditEntry.for_principal(
            principal, source="imaging", action="imaging.report.sign", outcome="success",
            object_type="imaging_report", object_id=str(row["id"]),
            detail={"study_ref": str(st["id"]), "content_hash": digest},
        ))
    await reading_alerts.deliver(db, redis, principal, alert)
    await _queue_render(st["id"])
    return repo.as_report(signed)


async def add_addendum(db: Database, principal: Principal, study_uid: str, body: AddendumIn) -> Addendum:
    """An addendum to a signed report (by a specialist who may see it); the PDF and DICOM are made again."""
    async with db.transaction(principal) as conn:
        st = await _study(conn, principal, study_uid, lock=True)
        require_specialist(principal)
        row = await repo.report_row(conn, st["id"], lock=True)
        if row is None or row["signed_at"] is None:
            raise Conflict("the report is not signed yet: edit the draft instead of adding an addendum")
        created = datetime.now(UTC)
        digest = canonical_sha256({"report_hash": row["content_hash"], "text": body.text,
                                   "author_id": str(principal.user_id), "at": created.isoformat()})
        addendum = await repo.insert_addendum(conn, {
            "id": uuid.uuid4(), "report_id": row["id"], "facility_id": row["facility_id"],
            "author_id": principal.user_id, "author_name": principal.display_name, "text": body.text,
            "content_hash": digest,
        })
        await write(conn, AuditEntry.for_principal(
            principal, source="imaging", action="imaging.report.addendum", outcome="success",
            object_type="imaging_report", object_id=str(row["id"]), detail={"addendum_id": str(addendum.id)},
        ))
    await _queue_render(st["id"])
    return addendum


async def pdf_key(db: Database, principal: Principal, study_uid: str) -> str:
    """The stored PDF of the signed report; 409 ``not_ready`` while it is being rendered."""
    async with db.transaction(principal) as conn:
        st = await _study(conn, principal, study_uid)
        row = await repo.report_row(conn, st["id"])
    if row is None or row["signed_at"] is None:
        raise NotFound("this study has no signed report yet")
    if not row["pdf_key"]:
        if datetime.now(UTC) - row["signed_at"] > RENDER_RETRY_AFTER:
            await _queue_render(st["id"])  # the first job was lost (broker down, worker killed)
        raise Conflict("the signed report is still being rendered; retry in a few seconds",
                       headers={"Retry-After": "3"}, code="not_ready")
    return str(row["pdf_key"])
