"""HTTP layer of the consult workflow: drafts, inboxes, detail, transitions, participants, consent, attachments,
sessions. Thin: the rules are in service.py, consent.py, attachments.py, sessions.py. Every request is audited by
the platform middleware; the domain functions add an audit record per change, and reads of a consult are
audited here by consult id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import UploadFile

from common.audit import AuditEntry
from common.auth import Principal, bearer_token, current_principal
from common.db import Database
from common.errors import Invalid, Unauthorized
from common.storage import ObjectStore
from services.consult import attachments, chat, consent, overdue, service, sessions
from services.consult.rooms.registry import publish_session_ended
from services.consult.schemas import (
    AcceptIn,
    AttachmentIn,
    AttachmentRow,
    CloseIn,
    ConsentRow,
    ConsultCreateIn,
    ConsultDetail,
    ConsultFields,
    ConsultList,
    ConsultRow,
    EConsentIn,
    EscalationList,
    InviteIn,
    ReasonIn,
    ReassignIn,
    SessionAccess,
    SessionIn,
)
from services.consult.settings import consult_settings

router = APIRouter(prefix="/api/consult", tags=["consult"])


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _token(request: Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("a bearer access token is required")
    return token


async def _audit_read(request: Request, principal: Principal, consult_id: UUID, what: str) -> None:
    await request.app.state.audit.record(AuditEntry.for_principal(
        principal, source="consult", action=f"consult.{what}.read", outcome="success", object_type="consult",
        object_id=str(consult_id), request_id=request.headers.get("x-request-id")))


@router.get("/capabilities")
async def capabilities(principal: Principal = Depends(current_principal)) -> dict[str, object]:
    """What this service offers."""
    return {"service": "consult", "status": "workflow",
            "features": ["drafts", "consent", "attachments", "inboxes", "deadlines", "grants", "sessions"],
            "max_participants": consult_settings().max_participants}


@router.post("/consults", status_code=201, response_model=ConsultRow)
async def create(body: ConsultCreateIn, request: Request,
                 principal: Principal = Depends(current_principal)) -> ConsultRow:
    """A new draft at your facility (you are the requester)."""
    return await service.create_draft(_db(request), principal, _token(request), body)


@router.get("/consults", response_model=ConsultList)
async def list_consults(
    request: Request,
    box: str = Query(default="outgoing", pattern="^(outgoing|incoming)$",
                     description="outgoing: your facility's requests; incoming: asked of you / your facility"),
    status: list[str] | None = Query(default=None),
    urgency: str | None = Query(default=None, description="emergency, urgent or routine"),
    limit: int = Query(default=50, ge=1, le=200),
    offset: int = Query(default=0, ge=0),
    principal: Principal = Depends(current_principal),
) -> ConsultList:
    """My side's consults with their deadlines; the incoming box lists overdue ones first, then by urgency."""
    return await service.list_consults(_db(request), principal, box=box, statuses=status, urgency=urgency,
                                       limit=limit, offset=offset)


@router.get("/escalations", response_model=EscalationList)
async def escalations(request: Request, limit: int = Query(default=50, ge=1, le=200),
                      principal: Principal = Depends(current_principal)) -> EscalationList:
    """Overdue consults asked of your facility and escalated (specialists and facility admins of it): ids,
    deadlines and levels, no patient."""
    return await overdue.escalations(_db(request), principal, limit)


@router.get("/consults/{consult_id}", response_model=ConsultDetail)
async def detail(consult_id: UUID, request: Request,
                 principal: Principal = Depends(current_principal)) -> ConsultDetail:
    """The consult with participants, attachments, consent status, history, grants and sessions."""
    found = await service.detail(_db(request), principal, consult_id)
    await _audit_read(request, principal, consult_id, "detail")
    return found


@router.patch("/consults/{consult_id}", response_model=ConsultRow)
async def edit(consult_id: UUID, body: ConsultFields, request: Request,
               principal: Principal = Depends(current_principal)) -> ConsultRow:
    """Change a draft's fields."""
    return await service.edit_draft(_db(request), principal, _token(request), consult_id, body)


@router.post("/consults/{consult_id}/submit", response_model=ConsultRow)
async def submit(consult_id: UUID, request: Request, principal: Principal = Depends(current_principal)) -> ConsultRow:
    """Send the invitation (409 ``consent_required`` without the patient's consent)."""
    return await service.act(_db(request), principal, consult_id, "submit")


@router.post("/consults/{consult_id}/accept", response_model=ConsultRow)
async def accept(consult_id: UUID, request: Request, body: AcceptIn | None = None,
                 principal: Principal = Depends(current_principal)) -> ConsultRow:
    """The target side accepts; the consultant is you unless ``consultant_id`` names another specialist."""
    return await service.accept(_db(request), principal, _token(request), consult_id,
                                body.consultant_id if body else None)


@router.post("/consults/{consult_id}/decline", response_model=ConsultRow)
async def decline(consult_id: UUID, body: ReasonIn, request: Request,
                  principal: Principal = Depends(current_principal)) -> ConsultRow:
    row = await service.act(_db(request), principal, consult_id, "decline", reason=body.reason)
    await chat.announce_access_change(request.app.state.redis, consult_id)  # its chat sockets close
    return row


@router.post("/consults/{consult_id}/cancel", response_model=ConsultRow)
async def cancel(consult_id: UUID, body: ReasonIn, request: Request,
                 principal: Principal = Depends(current_principal)) -> ConsultRow:
    row = await service.act(_db(request), principal, consult_id, "cancel", reason=body.reason)
    await chat.announce_access_change(request.app.state.redis, consult_id)  # its chat sockets close
    return row


@router.post("/consults/{consult_id}/reassign", response_model=ConsultRow)
async def reassign(consult_id: UUID, body: ReassignIn, request: Request,
                   principal: Principal = Depends(current_principal)) -> ConsultRow:
    row = await service.reassign(_db(request), principal, _token(request), consult_id, body.consultant_id,
                                 body.reason)
    await chat.announce_access_change(request.app.state.redis, consult_id)  # the previous consultant's sockets
    return row


@router.post("/consults/{consult_id}/close", response_model=ConsultRow)
async def close(consult_id: UUID, request: Request, body: CloseIn | None = None,
                principal: Principal = Depends(current_principal)) -> ConsultRow:
    """Close a signed consult (the requester after acknowledging, or the consultant); grants are withdrawn."""
    row = await service.act(_db(request), principal, consult_id, "close", note=body.note if body else "")
    await chat.announce_access_change(request.app.state.redis, consult_id)  # its chat sockets close
    return row


@router.post("/consults/{consult_id}/participants", status_code=204, response_class=Response)
async def invite(consult_id: UUID, body: InviteIn, request: Request,
                 principal: Principal = Depends(current_principal)) -> Response:
    """Invite a clinician of either side (at most CONSULT_MAX_PARTICIPANTS people)."""
    await service.invite(_db(request), principal, _token(request), consult_id, body.user_id)
    return Response(status_code=204)


@router.delete("/consults/{consult_id}/participants/{user_id}", status_code=204, response_class=Response)
async def remove_participant(consult_id: UUID, user_id: UUID, request: Request,
                             principal: Principal = Depends(current_principal)) -> Response:
    """Take an invited colleague off the consult; their open chat sockets close if they can no longer see it."""
    await service.remove_invitee(_db(request), principal, consult_id, user_id)
    await chat.announce_access_change(request.app.state.redis, consult_id)
    return Response(status_code=204)


# -- consent ------------------------------------------------------------------------------------------


@router.post("/consults/{consult_id}/consent", status_code=201, response_model=ConsentRow,
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": EConsentIn.model_json_schema()},
                 "multipart/form-data": {"schema": {"type": "object", "properties": {
                     "file": {"type": "string", "format": "binary"}, "signer_name": {"type": "string"},
                     "relation": {"type": "string"}, "statement_version": {"type": "string"}}}}}}})
async def record_consent(consult_id: UUID, request: Request,
                         principal: Principal = Depends(current_principal)) -> ConsentRow:
    """Record the patient's consent: multipart with the signed form, or JSON e-consent."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("file: the signed form is required")
        data = await upload.read(consult_settings().max_consent_bytes + 1)
        signed = consent.SignedForm(
            data=data, content_type=(upload.content_type or "").split(";")[0].strip().lower(),
            signer_name=str(form.get("signer_name") or ""), relation=str(form.get("relation") or ""),
            statement_version=str(form.get("statement_version") or consult_settings().consent_statement_version))
        store: ObjectStore = request.app.state.store
        return await consent.record_signed_form(_db(request), store, principal, consult_id, signed)
    try:
        body = EConsentIn.model_validate(await request.json())
    except ValueError as exc:
        raise Invalid(f"e-consent body: {exc}") from None
    return await consent.record_econsent(_db(request), principal, consult_id, body)


@router.delete("/consults/{consult_id}/consent", status_code=204, response_class=Response)
async def withdraw_consent(consult_id: UUID, request: Request,
                           principal: Principal = Depends(current_principal)) -> Response:
    """Withdraw the consent (before acceptance)."""
    await consent.withdraw(_db(request), principal, consult_id)
    return Response(status_code=204)


async def _chunks(store: ObjectStore, key: str) -> AsyncIterator[bytes]:
    async for chunk in store.get(key):
        yield chunk


@router.get("/consults/{consult_id}/consent/file", response_class=Response,
            responses={200: {"content": {"application/pdf": {}, "image/jpeg": {}, "image/png": {}}}})
async def consent_file(consult_id: UUID, request: Request,
                       principal: Principal = Depends(current_principal)) -> Response:
    """The signed consent form as uploaded."""
    key, media, size = await consent.form_file(_db(request), principal, consult_id)
    store: ObjectStore = request.app.state.store
    return StreamingResponse(_chunks(store, key), media_type=media,
                             headers={"Content-Length": str(size), "Cache-Control": "private, no-store"})


# -- attachments -----------------------------------------------------------------------------------------


@router.post("/consults/{consult_id}/attachments", status_code=201, response_model=AttachmentRow)
async def add_attachment(consult_id: UUID, body: AttachmentIn, request: Request,
                         principal: Principal = Depends(current_principal)) -> AttachmentRow:
    """Attach an item you can see (404 otherwise): imaging study UID, ECG recording id, pathology case id."""
    return await attachments.add(_db(request), principal, _token(request), consult_id, body)


@router.delete("/consults/{consult_id}/attachments/{attachment_id}", status_code=204, response_class=Response)
async def remove_attachment(consult_id: UUID, attachment_id: UUID, request: Request,
                            principal: Principal = Depends(current_principal)) -> Response:
    await attachments.remove(_db(request), principal, consult_id, attachment_id)
    return Response(status_code=204)


# -- sessions -------------------------------------------------------------------------------------------------


@router.post("/consults/{consult_id}/sessions", status_code=201, response_model=SessionAccess)
async def start_session(consult_id: UUID, request: Request, body: SessionIn | None = None,
                        principal: Principal = Depends(current_principal)) -> SessionAccess:
    """Open a video session (accepted or scheduled -> in_session); ``session_id`` names its room."""
    return await sessions.start(_db(request), principal, consult_id)


@router.post("/sessions/{session_id}/end", response_model=SessionAccess)
async def end_session(session_id: UUID, request: Request,
                      principal: Principal = Depends(current_principal)) -> SessionAccess:
    ended = await sessions.end(_db(request), principal, session_id)
    await publish_session_ended(request.app.state.redis, session_id)  # the room, in whichever process, ends
    return ended
