"""HTTP layer of the health-management service: thin, no logic."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from common.auth import Principal, current_principal
from common.db import Database
from services.health_mgmt import service
from services.health_mgmt.schemas import Patient, PatientIn, PatientPage, PatientPatch

router = APIRouter(prefix="/api/health", tags=["health_mgmt"])


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


@router.post("/patients", status_code=201, response_model=Patient)
async def register_patient(
    body: PatientIn, request: Request, principal: Principal = Depends(current_principal)
) -> Patient:
    """Register a patient at the caller's facility (身份证号 validated; sex and birth date derived)."""
    return await service.register_patient(_db(request), principal, body)


@router.get("/patients", response_model=PatientPage)
async def list_patients(
    request: Request,
    q: str | None = Query(default=None, max_length=100, description="name prefix, 身份证号 or mobile"),
    limit: int = Query(default=50, ge=1, le=200),
    offset: int = Query(default=0, ge=0),
    principal: Principal = Depends(current_principal),
) -> PatientPage:
    """Patients the caller may see (own facility, and facilities it reads for)."""
    return await service.list_patients(_db(request), principal, query=q, limit=limit, offset=offset)


@router.get("/patients/{patient_id}", response_model=Patient)
async def get_patient(
    patient_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Patient:
    """One patient; 404 when it does not exist or is not the caller's to see."""
    return await service.get_patient(_db(request), principal, patient_id)


@router.patch("/patients/{patient_id}", response_model=Patient)
async def change_patient(
    patient_id: UUID, body: PatientPatch, request: Request, principal: Principal = Depends(current_principal)
) -> Patient:
    """Change a patient's details (registering facility only; optimistic concurrency by ``version``)."""
    return await service.change_patient(_db(request), principal, patient_id, body)


@router.delete("/patients/{patient_id}", status_code=204)
async def remove_patient(
    patient_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Response:
    """Withdraw a registration made in error (kept for the record, hidden from use)."""
    await service.remove_patient(_db(request), principal, patient_id)
    return Response(status_code=204)
