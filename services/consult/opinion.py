"""The consultant's opinion: a draft, signed (immutable), addenda, the PDF both sides keep, the requester's
acknowledgement (docs/consult.md "Opinion"). Same model as the imaging and ECG reports.

The consult's status moves through services/consult/service.py ``transition``: the first draft saved is
``write_opinion`` (accepted/scheduled/in_session → opinion_written), signing is ``sign`` (→ signed), and the
acknowledgement is ``acknowledge`` (status kept). A signed opinion keeps a SHA-256 over its canonical content,
the consult, the signer and the signing time; nothing of that changes afterwards (409 here, and
platform.keep_signed_document in the database behind it).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from common.audit import AuditEntry, write
from common.auth import Principal
from common.db import Database
from common.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from common.fonts import FontMissing
from common.hashing import canonical_sha256
from common.signing import Addendum, SignIn
from common.storage import ObjectStore
from services.consult import access
from services.consult import repository_opinion as repo
from services.consult.opinion_pdf import OpinionDocument, render_pdf
from services.consult.schemas import ConsultRow
from services.consult.service import transition


class OpinionIn(BaseModel):
    """The draft as the consultant writes it; ``version`` is the draft version edited (omit for the first)."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1)
    findings: str | None = Field(default=None, max_length=20000)
    diagnosis: str | None = Field(default=None, max_length=5000)
    recommendations: str | None = Field(default=None, max_length=20000)
    follow_up: str | None = Field(default=None, max_length=5000)
    referral_advised: bool | None = None


class AddendumIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=10000)


class Opinion(BaseModel):
    id: UUID
    consult_id: UUID
    status: str = Field(description="draft or signed")
    author_id: UUID
    author_name: str
    findings: str
    diagnosis: str
    recommendations: str
    follow_up: str
    referral_advised: bool
    version: int
    created_at: datetime
    updated_at: datetime
    signed_at: datetime | None
    signed_by: UUID | None
    signer_name: str | None
    content_hash: str | None
    acknowledged_at: datetime | None
    acknowledged_by: UUID | None
    acknowledged_name: str | None
    addenda: list[Addendum] = Field(default_factory=list)


def as_opinion(row: Any, addenda: list[Addendum] | None = None) -> Opinion:
    data = {k: v for k, v in dict(row).items() if k not in ("facility_id", "target_facility_id", "pdf_key",
                                                             "pdf_version")}
    return Opinion(**data, status="signed" if data["signed_at"] else "draft", addenda=addenda or [])


def content_hash(opinion_id: UUID, consult_id: UUID, content: dict[str, Any], signer_id: UUID, signer_name: str,
                 signed_at: datetime) -> str:
    """SHA-256 over the canonical signed content; recomputable from the stored opinion."""
    body = {
        "opinion_id": str(opinion_id), "consult_id": str(consult_id),
        **{k: content[k] for k in repo.CONTENT},
        "signer_id": str(signer_id), "signer_name": signer_name,
        "signed_at": signed_at.astimezone(UTC).isoformat(),
    }
    return canonical_sha256(body)


def verify(opinion: Opinion) -> bool:
    """Whether a signed opinion still matches its content hash."""
    if opinion.signed_at is None or opinion.content_hash is None or opinion.signed_by is None:
        return False
    content = opinion.model_dump(include=set(repo.CONTENT))
    return opinion.content_hash == content_hash(opinion.id, opinion.consult_id, content, opinion.signed_by,
                                                opinion.signer_name or "", opinion.signed_at)


def _audit(principal: Principal, action: str, consult_id: UUID, object_id: UUID | None = None,
           **detail: Any) -> AuditEntry:
    return AuditEntry.for_principal(
        principal, source="consult", action=f"consult.opinion.{action}", outcome="success",
        object_type="consult_opinion", object_id=str(object_id or consult_id),
        detail={"consult_id": str(consult_id), **{k: str(v) for k, v in detail.items()}},
    )


def _require_consultant(principal: Principal, consult: ConsultRow) -> None:
    if consult.consultant_id != principal.user_id:
        raise Forbidden("only the consult's consultant writes and signs its opinion")


def _require_requesting_doctor(principal: Principal, consult: ConsultRow) -> None:
    """The requester, or a clinician of the requesting facility itself (not the reading centre that serves it,
    and never the consultant acknowledging their own opinion)."""
    own_side = principal.is_clinical and principal.facility_id == consult.facility_id
    if principal.user_id == consult.consultant_id or not (principal.user_id == consult.requester_id or own_side):
        raise Forbidden("the requesting doctor acknowledges the opinion")


async def get_opinion(db: Database, principal: Principal, consult_id: UUID) -> Opinion:
    """The opinion (draft or signed, with addenda) of a consult the caller may see."""
    async with db.transaction(principal) as conn:
        await access.visible_consult(conn, principal, consult_id)
        row = await repo.opinion(conn, consult_id)
        if row is None:
            raise NotFound("this consult has no opinion yet")
        return as_opinion(row, await repo.addenda_of(conn, row["id"]))


async def save_draft(db: Database, principal: Principal, consult_id: UUID, body: OpinionIn) -> Opinion:
    """Create or edit the draft (the consultant); the first save moves the consult to opinion_written."""
    changes = body.model_dump(include=set(repo.CONTENT), exclude_none=True)
    async with db.transaction(principal) as conn:
        consult = await access.visible_consult(conn, principal, consult_id, lock=True)
        _require_consultant(principal, consult)
        row = await repo.opinion(conn, consult_id, lock=True)
        if row is not None and row["signed_at"] is not None:
            raise Conflict("the opinion is signed and can no longer change; add an addendum")
        if consult.status != "opinion_written" or row is None:
            await transition(conn, principal, consult, "write_opinion")
        if row is None:
            row = await repo.insert_opinion(conn, consult, opinion_id=uuid.uuid4(), author_id=principal.user_id,
                                            author_name=principal.display_name, content=changes)
            await write(conn, _audit(principal, "create", consult_id, row["id"]))
            return as_opinion(row)
        if body.version is None:
            raise Invalid("send the draft's version with every edit (it guards against overwriting)")
        updated = await repo.update_draft(conn, row["id"], body.version, changes, principal.user_id,
                                          principal.display_name)
        if updated is None:
            raise Conflict(f"the draft changed meanwhile (now at version {row['version']}); reload it")
        await write(conn, _audit(principal, "edit", consult_id, row["id"], version=updated["version"]))
        return as_opinion(updated)


async def sign(db: Database, principal: Principal, consult_id: UUID, body: SignIn) -> Opinion:
    """Sign the draft as it stands at ``version`` (the consultant); immutable from here on."""
    async with db.transaction(principal) as conn:
        consult = await access.visible_consult(conn, principal, consult_id, lock=True)
        _require_consultant(principal, consult)
        row = await repo.opinion(conn, consult_id, lock=True)
        if row is None:
            raise Conflict("write the opinion before signing it")
        if row["signed_at"] is not None:
            raise Conflict("the opinion is already signed; add an addendum")
        if row["version"] != body.version:
            raise Conflict(f"the draft changed meanwhile (now at version {row['version']}); review it again")
        if not (row["diagnosis"].strip() or row["recommendations"].strip()):
            raise Invalid("an opinion needs a diagnosis or recommendations before it is signed")
        await transition(conn, principal, consult, "sign")
        signed_at = datetime.now(UTC)
        digest = content_hash(row["id"], consult_id, dict(row), principal.user_id, principal.display_name,
                              signed_at)
        signed = await repo.sign(conn, row["id"], version=body.version, signed_at=signed_at,
                                 signer_id=principal.user_id, signer_name=principal.display_name, content_hash=digest)
        assert signed is not None  # locked and checked above
        await write(conn, _audit(principal, "sign", consult_id, row["id"], content_hash=digest))
        return as_opinion(signed)


async def add_addendum(db: Database, principal: Principal, consult_id: UUID, body: AddendumIn) -> Addendum:
    """Add to a signed opinion without changing it (the consultant)."""
    async with db.transaction(principal) as conn:
        consult = await access.visible_consult(conn, principal, consult_id)
        _require_consultant(principal, consult)
        row = await repo.opinion(conn, consult_id, lock=True)
        if row is None or row["signed_at"] is None:
            raise Conflict("only a signed opinion takes addenda: edit the draft instead")
        created = datetime.now(UTC)
        digest = canonical_sha256({"opinion_hash": row["content_hash"], "text": body.text,
                                   "author_id": str(principal.user_id), "at": created.isoformat()})
        addendum = await repo.insert_addendum(conn, row, addendum_id=uuid.uuid4(), author_id=principal.user_id,
                                              author_name=principal.display_name, text=body.text,
                                              content_hash=digest)
        await write(conn, _audit(principal, "addendum", consult_id, row["id"], addendum_id=addendum.id))
        return addendum


async def acknowledge(db: Database, principal: Principal, consult_id: UUID) -> Opinion:
    """The requesting side confirms it has read the signed opinion (once)."""
    async with db.transaction(principal) as conn:
        consult = await access.visible_consult(conn, principal, consult_id, lock=True)
        _require_requesting_doctor(principal, consult)
        row = await repo.opinion(conn, consult_id, lock=True)
        if row is None or row["signed_at"] is None:
            raise Conflict("there is no signed opinion to acknowledge yet")
        if row["acknowledged_at"] is not None:
            raise Conflict(f"the opinion was already acknowledged by {row['acknowledged_name']}")
        await transition(conn, principal, consult, "acknowledge")
        done = await repo.acknowledge(conn, row["id"], user_id=principal.user_id, name=principal.display_name,
                                      at=datetime.now(UTC))
        assert done is not None  # locked and checked above
        await write(conn, _audit(principal, "acknowledge", consult_id, row["id"]))
        return as_opinion(done, await repo.addenda_of(conn, row["id"]))


def pdf_version(row: Any, addenda: list[Addendum]) -> int:
    """What a rendering includes: one step per addendum and one for the acknowledgement."""
    return 1 + len(addenda) + (1 if row["acknowledged_at"] else 0)


async def pdf_key(db: Database, store: ObjectStore, principal: Principal, consult_id: UUID) -> str:
    """The stored PDF of the signed opinion (rendered now if the stored one is older than the opinion)."""
    async with db.transaction(principal) as conn:
        consult = await access.visible_consult(conn, principal, consult_id)
        row = await repo.opinion(conn, consult_id)
        if row is None or row["signed_at"] is None:
            raise NotFound("this consult has no signed opinion")
        addenda = await repo.addenda_of(conn, row["id"])
        version = pdf_version(row, addenda)
        await write(conn, _audit(principal, "pdf", consult_id, row["id"]))
    if row["pdf_key"] and row["pdf_version"] >= version:
        return str(row["pdf_key"])
    doc = document(consult, row, addenda)
    try:
        pdf = await asyncio.to_thread(render_pdf, doc, os.environ.get("CONSULT_CJK_FONT") or None)
    except FontMissing as exc:
        raise Unavailable(f"the opinion PDF cannot be drawn here: {exc}") from exc
    key = f"consult/{consult.facility_id}/{consult_id}/opinion-v{version}.pdf"
    await store.put(key, pdf, content_type="application/pdf")
    async with db.transaction(principal) as conn:
        await repo.set_pdf(conn, row["id"], key, version)
    return key


def document(consult: ConsultRow, row: Any, addenda: list[Addendum]) -> OpinionDocument:
    return OpinionDocument(
        consult_id=str(consult.id), urgency=consult.urgency, specialty=consult.specialty,
        target_department=consult.target_department, requester_name=consult.requester_name,
        consultant_name=consult.consultant_name or row["author_name"], patient_sex=consult.patient_sex,
        patient_age=consult.patient_age, patient_ref=str(consult.patient_id)[:8] if consult.patient_id else None,
        reason=consult.reason, question=consult.question, clinical_summary=consult.clinical_summary,
        requested_at=consult.submitted_at or consult.created_at, findings=row["findings"],
        diagnosis=row["diagnosis"], recommendations=row["recommendations"], follow_up=row["follow_up"],
        referral_advised=row["referral_advised"], signer_name=row["signer_name"], signed_at=row["signed_at"],
        content_hash=row["content_hash"], acknowledged_name=row["acknowledged_name"],
        acknowledged_at=row["acknowledged_at"], addenda=[a.model_dump() for a in addenda],
    )

