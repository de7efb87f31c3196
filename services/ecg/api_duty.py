"""HTTP layer of the reading centre's duty roster (值班表): who receives critical values first."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from common.auth import Principal, bearer_token, current_principal
from common.db import Database
from services.ecg import duty
from services.ecg.schemas import DutyList, DutyNow, DutyShift, DutyShiftIn

router = APIRouter(prefix="/api/ecg", tags=["ecg duty roster"])


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


@router.get("/duty", response_model=DutyList)
async def list_duty(
    request: Request,
    since: datetime | None = Query(default=None, alias="from", description="default: 12 hours ago"),
    until: datetime | None = Query(default=None, alias="to", description="default: 14 days after from/now"),
    user_id: UUID | None = Query(default=None, description="only this reader's shifts"),
    principal: Principal = Depends(current_principal),
) -> DutyList:
    """Shifts of your facility's roster overlapping the window, earliest first."""
    return await duty.list_shifts(_db(request), principal, since=since, until=until, user_id=user_id)


@router.get("/duty/now", response_model=DutyNow)
async def duty_now(request: Request, principal: Principal = Depends(current_principal)) -> DutyNow:
    """Who is on duty now: at your facility, and at the reading centre that reads for it."""
    return await duty.on_duty_now(_db(request), principal)


@router.post("/duty", response_model=DutyShift, status_code=201)
async def put_on_duty(
    body: DutyShiftIn, request: Request, principal: Principal = Depends(current_principal)
) -> DutyShift:
    """Put a reader on duty at your facility: a specialist themselves (``user_id`` left out), a facility_admin
    any specialist of the facility. 422 for an invalid window, 409 when it overlaps the reader's other shift."""
    return await duty.create_shift(_db(request), principal, bearer_token(request), body)


@router.delete("/duty/{shift_id}", status_code=204, response_class=Response)
async def take_off_duty(
    shift_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Response:
    """End a running shift now, or remove one that has not begun (the reader or the facility_admin)."""
    await duty.take_off_duty(_db(request), principal, shift_id)
    return Response(status_code=204)
