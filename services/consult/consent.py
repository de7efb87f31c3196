"""The patient's informed consent to the consult (docs/consult.md "Consent"; 国卫医发〔2014〕51号).

Recorded by the requesting side before submission: a signed form (PDF/JPEG/PNG into object storage under
``consult/<facility>/<consult>/consent/``) or an e-consent. Either way the record keeps who recorded it, when,
the signer and relation, the statement version and the SHA-256 of the statement text shown. Withdrawal is
possible until the consult is accepted; the consult then needs a consent again before it can be submitted.
The signer's name is personal data: it is stored, never logged nor put into events.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import asyncpg

from common.audit import AuditEntry, write
from common.auth import Principal
from common.db import Database
from common.errors import Conflict, Forbidden, Invalid, NotFound, UnsupportedMediaType
from common.storage import ObjectStore
from services.consult import access
from services.consult import repository_items as items
from services.consult.schemas import ConsentRow, ConsultRow, EConsentIn
from services.consult.settings import consult_settings

RELATIONS = ("本人", "配偶", "子女", "父母", "其他监护人")
FORM_TYPES = {"application/pdf": b"%PDF", "image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG"}
# Consent may be recorded or withdrawn while the consult is not yet accepted.
OPEN_FOR_CONSENT = ("draft", "submitted")
# The statement shown to the patient (its version and hash go into every consent record).
STATEMENT = {
    "2026-01": ("本人已知晓远程会诊的目的、方式、可能的风险及费用，同意将病历资料（含影像、心电等）提供给受邀医疗机构的"
                "医师用于本次会诊，同意通过视频方式进行会诊。I understand the purpose, method, risks and costs of this "
                "remote consultation and agree that my records are shared with the invited facility's physicians "
                "for it, including by video."),
}


def statement_hash(version: str) -> str:
    text = STATEMENT.get(version)
    if text is None:
        raise Invalid(f"statement_version: unknown (known: {', '.join(STATEMENT)})")
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class SignedForm:
    data: bytes
    content_type: str
    signer_name: str
    relation: str
    statement_version: str


def _check_open(principal: Principal, c: ConsultRow) -> None:
    if "requesting" not in access.sides(principal, c):
        raise Forbidden("the requesting side records the patient's consent")
    if c.status not in OPEN_FOR_CONSENT:
        raise Conflict(f"consent can change only before acceptance; current state: {c.status}")


def _check_relation(relation: str) -> None:
    if relation not in RELATIONS:
        raise Invalid(f"relation must be one of {', '.join(RELATIONS)}")


async def record_econsent(db: Database, principal: Principal, consult_id: uuid.UUID, body: EConsentIn) -> ConsentRow:
    digest = statement_hash(body.statement_version)
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id, lock=True)
        _check_open(principal, c)
        await items.withdraw_consents(conn, c.id, principal.user_id)
        await items.insert_consent(conn, c, {
            "method": "e_consent", "signer_name": body.signer_name.strip(), "relation": body.relation,
            "statement_version": body.statement_version, "statement_hash": digest, "recorded_by": principal.user_id,
            "recorded_by_name": principal.display_name})
        await _audit(conn, principal, c, "consult.consent.record", {"method": "e_consent"})
        found = await items.current_consent(conn, c.id)
    assert found is not None
    return found


async def record_signed_form(db: Database, store: ObjectStore, principal: Principal, consult_id: uuid.UUID,
                             form: SignedForm) -> ConsentRow:
    _check_relation(form.relation)
    if not form.signer_name.strip():
        raise Invalid("signer_name is required")
    digest = statement_hash(form.statement_version)
    magic = FORM_TYPES.get(form.content_type)
    if magic is None or not form.data.startswith(magic):
        raise UnsupportedMediaType("the signed form must be a PDF, JPEG or PNG file")
    if len(form.data) > consult_settings().max_consent_bytes:
        raise Invalid(f"the signed form is larger than {consult_settings().max_consent_bytes} bytes")
    async with db.transaction(principal) as conn:  # check before writing the object
        c = await access.visible_consult(conn, principal, consult_id)
        _check_open(principal, c)
    key = f"consult/{c.facility_id}/{c.id}/consent/{uuid.uuid4()}"
    await store.put(key, form.data, content_type=form.content_type, length=len(form.data))
    try:
        async with db.transaction(principal) as conn:
            c = await access.visible_consult(conn, principal, consult_id, lock=True)
            _check_open(principal, c)
            await items.withdraw_consents(conn, c.id, principal.user_id)
            await items.insert_consent(conn, c, {
                "method": "signed_form", "signer_name": form.signer_name.strip(), "relation": form.relation,
                "statement_version": form.statement_version, "statement_hash": digest, "object_key": key,
                "content_type": form.content_type, "size_bytes": len(form.data),
                "sha256": hashlib.sha256(form.data).hexdigest(), "recorded_by": principal.user_id,
                "recorded_by_name": principal.display_name})
            await _audit(conn, principal, c, "consult.consent.record", {"method": "signed_form"})
            found = await items.current_consent(conn, c.id)
    except Exception:
        await store.delete(key)
        raise
    assert found is not None
    return found


async def withdraw(db: Database, principal: Principal, consult_id: uuid.UUID) -> None:
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id, lock=True)
        _check_open(principal, c)
        if not await items.withdraw_consents(conn, c.id, principal.user_id):
            raise NotFound("no consent is recorded")
        await _audit(conn, principal, c, "consult.consent.withdraw", {})


async def form_file(db: Database, principal: Principal, consult_id: uuid.UUID) -> tuple[str, str, int]:
    """(key, content type, size) of the newest signed form, for anyone who may see the consult."""
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id)
        row = await items.consent_file(conn, c.id)
        if row is None:
            raise NotFound("no signed consent form")
        await _audit(conn, principal, c, "consult.consent.read", {})
    return str(row["object_key"]), str(row["content_type"]), int(row["size_bytes"])


async def _audit(conn: asyncpg.Connection, principal: Principal, c: ConsultRow, action: str,
                 detail: dict[str, str]) -> None:
    await write(conn, AuditEntry.for_principal(principal, source="consult", action=action,
                                               outcome="success", object_type="consult", object_id=str(c.id),
                                               detail=detail))
