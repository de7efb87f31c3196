"""Domain rules of the patient register: who may register, see, change and remove a patient."""

from __future__ import annotations

import uuid
from uuid import UUID

import asyncpg

from common.auth import Principal
from common.db import Database
from common.errors import Conflict, Forbidden, Invalid, NotFound
from services.health_mgmt import repository
from services.health_mgmt.identity import birth_of, sex_of
from services.health_mgmt.schemas import Patient, PatientIn, PatientPage, PatientPatch

MAX_PAGE = 200


def _require_clinical(principal: Principal) -> None:
    if not principal.is_clinical:
        raise Forbidden("patient records are open to clinical roles only")


async def register_patient(db: Database, principal: Principal, data: PatientIn) -> Patient:
    """Register a patient at the caller's own facility; sex and birth date follow the ID number."""
    _require_clinical(principal)
    sex, birth = data.sex, data.birth_date
    if data.id_number:
        derived_sex, derived_birth = sex_of(data.id_number), birth_of(data.id_number)
        if sex not in (None, "unknown", derived_sex):
            raise Invalid("sex does not match the 身份证号")
        if birth is not None and birth != derived_birth:
            raise Invalid("birth_date does not match the 身份证号")
        sex, birth = derived_sex, derived_birth
    values = {
        "id": uuid.uuid4(),
        "facility_id": principal.facility_id,
        "name": data.name,
        "id_number": data.id_number,
        "sex": sex or "unknown",
        "birth_date": birth,
        "phone": data.phone,
        "address": data.address,
        "created_by": principal.user_id,
    }
    try:
        async with db.transaction(principal) as conn:
            return await repository.insert_patient(conn, values)
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("a patient with this 身份证号 is already registered at your facility") from exc


async def get_patient(db: Database, principal: Principal, patient_id: UUID) -> Patient:
    _require_clinical(principal)
    async with db.transaction(principal) as conn:
        patient = await repository.get_patient(conn, patient_id, principal.visible_facility_ids)
    if patient is None:
        raise NotFound("no such patient")
    return patient


async def list_patients(
    db: Database, principal: Principal, *, query: str | None, limit: int, offset: int
) -> PatientPage:
    _require_clinical(principal)
    limit = max(1, min(limit, MAX_PAGE))
    async with db.transaction(principal) as conn:
        items = await repository.list_patients(
            conn, principal.visible_facility_ids, query=query or None, limit=limit, offset=max(0, offset)
        )
    return PatientPage(items=items, limit=limit, offset=offset)


async def change_patient(db: Database, principal: Principal, patient_id: UUID, patch: PatientPatch) -> Patient:
    """Only the registering facility changes a patient; a stale ``version`` is a 409."""
    _require_clinical(principal)
    changes = patch.model_dump(exclude_unset=True, exclude={"version"})
    async with db.transaction(principal) as conn:
        current = await repository.get_patient(conn, patient_id, principal.visible_facility_ids)
        if current is None:
            raise NotFound("no such patient")
        if current.facility_id != principal.facility_id:
            raise Forbidden("only the registering facility may change this patient")
        if current.id_number and ("sex" in changes or "birth_date" in changes):
            raise Invalid("sex and birth date follow the 身份证号 and cannot be changed apart from it")
        updated = await repository.update_patient(conn, patient_id, principal.facility_id, patch.version, changes)
    if updated is None:
        raise Conflict(f"the patient was changed by someone else (now at version {current.version})")
    return updated


async def remove_patient(db: Database, principal: Principal, patient_id: UUID) -> None:
    """Withdraw a registration made in error; the row is kept (records are retained), hidden from lists."""
    _require_clinical(principal)
    async with db.transaction(principal) as conn:
        current = await repository.get_patient(conn, patient_id, principal.visible_facility_ids)
        if current is None:
            raise NotFound("no such patient")
        if current.facility_id != principal.facility_id:
            raise Forbidden("only the registering facility may remove this patient")
        await repository.soft_delete_patient(conn, patient_id, principal.facility_id)
