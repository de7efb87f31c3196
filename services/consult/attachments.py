"""Items attached to a consult by reference (imaging study UID, ECG recording id, pathology case id).

Added and removed by the requesting side while the consult is a draft or submitted. Before an item is
attached, the owning service is asked with the requester's own token whether the requester can see it; an
item they cannot see answers 404, like one that does not exist.
"""

from __future__ import annotations

from uuid import UUID

from common.audit import AuditEntry, write
from common.auth import Principal
from common.db import Database
from common.errors import Conflict, Forbidden, NotFound
from services.consult import access, remote
from services.consult import repository_items as items
from services.consult.schemas import AttachmentIn, AttachmentRow

OPEN_FOR_ATTACHMENTS = ("draft", "submitted")


def _check(principal: Principal, status: str, capacities: set[str]) -> None:
    if "requesting" not in capacities:
        raise Forbidden("the requesting side attaches items")
    if status not in OPEN_FOR_ATTACHMENTS:
        raise Conflict(f"attachments change only while draft or submitted; current state: {status}")


async def add(db: Database, principal: Principal, token: str, consult_id: UUID, body: AttachmentIn) -> AttachmentRow:
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id)
        _check(principal, c.status, access.sides(principal, c))
    await remote.require_visible_item(token, body.kind, body.ref.strip())
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id, lock=True)
        _check(principal, c.status, access.sides(principal, c))
        aid = await items.insert_attachment(conn, c, kind=body.kind, ref=body.ref.strip(), label=body.label,
                                            added_by=principal.user_id)
        if aid is None:
            raise Conflict("this item is attached already")
        await write(conn, AuditEntry.for_principal(principal, source="consult", action="consult.attachment.add",
                                                   outcome="success", object_type="consult", object_id=str(c.id),
                                                   detail={"kind": body.kind, "attachment_id": str(aid)}))
        return next(a for a in await items.attachments(conn, c.id) if a.id == aid)


async def remove(db: Database, principal: Principal, consult_id: UUID, attachment_id: UUID) -> None:
    async with db.transaction(principal) as conn:
        c = await access.visible_consult(conn, principal, consult_id, lock=True)
        _check(principal, c.status, access.sides(principal, c))
        if not await items.delete_attachment(conn, c.id, attachment_id):
            raise NotFound("no such attachment")
        await write(conn, AuditEntry.for_principal(principal, source="consult", action="consult.attachment.remove",
                                                   outcome="success", object_type="consult", object_id=str(c.id),
                                                   detail={"attachment_id": str(attachment_id)}))
