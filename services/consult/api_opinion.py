"""HTTP layer of the consult opinion: draft, sign, addenda, acknowledge, PDF (thin; rules in opinion.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from common.auth import Principal, current_principal
from common.db import Database
from common.signing import Addendum, SignIn
from common.storage import ObjectStore
from services.consult import opinion
from services.consult.opinion import AddendumIn, Opinion, OpinionIn

router = APIRouter(prefix="/api/consult", tags=["consult opinion"])


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.store
    return store


async def stream_object(store: ObjectStore, key: str) -> AsyncIterator[bytes]:
    async for chunk in store.get(key):
        yield chunk


@router.get("/consults/{consult_id}/opinion", response_model=Opinion)
async def get_opinion(consult_id: UUID, request: Request, principal: Principal = Depends(current_principal)) -> Opinion:
    """The opinion (draft or signed, with addenda): both sides of the consult may read it."""
    return await opinion.get_opinion(_db(request), principal, consult_id)


@router.put("/consults/{consult_id}/opinion", response_model=Opinion)
async def save_opinion(
    consult_id: UUID, body: OpinionIn, request: Request, principal: Principal = Depends(current_principal)
) -> Opinion:
    """Write or edit the draft (the consultant; ``version`` of the draft with every edit; 409 once signed).
    The first save moves the consult to ``opinion_written``."""
    return await opinion.save_draft(_db(request), principal, consult_id, body)


@router.post("/consults/{consult_id}/opinion/sign", response_model=Opinion)
async def sign_opinion(
    consult_id: UUID, body: SignIn, request: Request, principal: Principal = Depends(current_principal)
) -> Opinion:
    """Sign the draft at ``version`` (the consultant): immutable afterwards (content hash, signer, time);
    the consult moves to ``signed``."""
    return await opinion.sign(_db(request), principal, consult_id, body)


@router.post("/consults/{consult_id}/opinion/addenda", status_code=201, response_model=Addendum)
async def add_addendum(
    consult_id: UUID, body: AddendumIn, request: Request, principal: Principal = Depends(current_principal)
) -> Addendum:
    """Add to the signed opinion without changing it (the consultant)."""
    return await opinion.add_addendum(_db(request), principal, consult_id, body)


@router.post("/consults/{consult_id}/opinion/acknowledge", response_model=Opinion)
async def acknowledge(consult_id: UUID, request: Request, principal: Principal = Depends(current_principal)) -> Opinion:
    """The requesting side confirms it has read the signed opinion (once; 409 after)."""
    return await opinion.acknowledge(_db(request), principal, consult_id)


@router.get("/consults/{consult_id}/opinion.pdf", responses={200: {"content": {"application/pdf": {}}}})
async def opinion_pdf(
    consult_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Response:
    """The signed opinion as a PDF (Chinese): the consult's summary, the opinion, signer, time, content hash,
    addenda and the acknowledgement."""
    store = _store(request)
    key = await opinion.pdf_key(_db(request), store, principal, consult_id)
    info = await store.stat(key)
    return StreamingResponse(
        stream_object(store, key), media_type="application/pdf",
        headers={"Content-Length": str(info.size),
                 "Content-Disposition": f'attachment; filename="consult-opinion-{consult_id}.pdf"'},
    )
