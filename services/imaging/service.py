"""Domain rules of the archive: who may store and see studies, and ``store_instance``, the one way in.

Every adapter ends in :func:`store_instance`: STOW-RS (dicomweb_stow.py) now, C-STORE and the web uploader
later. Order (ARCHITECTURE.md): validate and index the file first (nothing is written for a bad file), write
the original byte for byte to object storage, then the index rows and the event in one transaction; if that
fails, the object is removed.

Duplicate SOP Instance UID policy (docs/imaging.md, our conformance statement):
- same bytes (sha256) as the archived copy: success, nothing changes (modalities resend);
- other bytes, same study and series: the new copy replaces the old one, answered with Warning Reason
  0xB111 (HTTP 202 in STOW-RS); the old object is removed after the commit;
- other study or series, or a copy the caller's facility cannot see: refused, Failure Reason 0x0111.
A study belongs to the facility that sent its first instance. A facility that may see the study (its
reading centre) may add instances to it; any other facility sending the same Study Instance UID is refused
with Failure Reason 0x0124 (not authorised).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast
from uuid import UUID

import asyncpg

from common.auth import Principal, Role
from common.db import Database
from common.errors import Forbidden, NotFound
from common.events import record_event
from common.storage import ObjectStore
from services.imaging import repository as repo
from services.imaging.index import InvalidInstance, ParsedInstance, parse_instance, valid_uid
from services.imaging.schemas import (
    FAILURE_DOES_NOT_MATCH,
    FAILURE_DUPLICATE_SOP,
    FAILURE_NOT_AUTHORIZED,
    FAILURE_OUT_OF_RESOURCES,
    FAILURE_PROCESSING,
    WARNING_REPLACED,
    Caller,
    ModalityCaller,
    Origin,
    StoreOutcome,
    StoreStatus,
    failed,
)
from services.imaging.settings import ImagingSettings, imaging_settings

log = logging.getLogger("telehealth.imaging")
STORE_ROLES = (Role.TECHNICIAN, Role.TOWNSHIP_DOCTOR, Role.SPECIALIST)
CHUNK = 1024 * 1024
Source = Path | IO[bytes] | AsyncIterator[bytes]


@dataclass(frozen=True)
class Archive:
    """What the archive works with: the database pool, the object store and the settings."""

    db: Database
    store: ObjectStore
    settings: ImagingSettings

    @classmethod
    def of(cls, db: Database, store: ObjectStore, settings: ImagingSettings | None = None) -> Archive:
        return cls(db, store, settings or imaging_settings())


def require_store_role(principal: Principal) -> None:
    if not principal.has_role(*STORE_ROLES):
        raise Forbidden("storing studies needs the technician, township_doctor or specialist role")


def require_reader(principal: Principal) -> None:
    if not principal.is_clinical:
        raise Forbidden("studies are open to clinical roles only")


def visible_facilities(principal: Principal) -> frozenset[UUID]:
    """Facilities whose studies ``principal`` may see: its own and those its reading centre serves.

    The hook for grants: consults and share links (issue 4, item 6) will add studies visible beyond this
    standing policy. They belong here and in one more clause of the repositories' visibility filters
    (``facility_id = ANY($visible)``) and of the row-level-security policies, not in the endpoints.
    """
    return principal.visible_facility_ids


async def require_stow_study(archive: Archive, principal: Principal, study_uid: str) -> None:
    """STOW-RS to /studies/{study}: 404 for a malformed UID or a study archived by a facility the caller
    cannot see (answered exactly like a study that does not exist); a new UID may be stored into."""
    if not valid_uid(study_uid):
        raise NotFound("no such study")
    async with archive.db.transaction(principal) as conn:
        if (await repo.study_owner(conn, study_uid, visible_facilities(principal)) is None
                and await repo.study_uid_taken(conn, study_uid)):
            raise NotFound("no such study")


def object_key(facility_id: UUID, p: ParsedInstance, sha256: str | None = None) -> str:
    """imaging/<facility>/<study>/<series>/<sop>.dcm; a replacing copy gets its hash in the name."""
    suffix = f".{sha256[:16]}" if sha256 else ""
    return f"imaging/{facility_id}/{p.study_uid}/{p.series_uid}/{p.sop_instance_uid}{suffix}.dcm"


async def file_chunks(path: Path, size: int = CHUNK) -> AsyncIterator[bytes]:
    """Stream a local file without holding it (reads run in a worker thread)."""
    fh = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(fh.read, size):
            yield chunk
    finally:
        await asyncio.to_thread(fh.close)


def hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def spool(source: IO[bytes] | AsyncIterator[bytes], target: Path) -> tuple[str, int]:
    """Copy a stream to ``target`` (hashing on the way), chunk by chunk."""
    digest, size = hashlib.sha256(), 0
    fh = await asyncio.to_thread(target.open, "wb")
    try:
        if hasattr(source, "read"):
            reader = cast(IO[bytes], source)
            while chunk := await asyncio.to_thread(reader.read, CHUNK):
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(fh.write, chunk)
        else:
            async for chunk in source:
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(fh.write, chunk)
    finally:
        await asyncio.to_thread(fh.close)
    return digest.hexdigest(), size


class _Refused(Exception):
    """Rolls the store transaction back with a Failure Reason."""

    def __init__(self, reason: int, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


async def store_instance(
    archive: Archive,
    source: Source,
    caller: Caller,
    origin: Origin,
    *,
    expected_study_uid: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
) -> StoreOutcome:
    """Archive one DICOM Part-10 instance from ``source`` (a file path, a binary file object or an async
    iterator of bytes) for ``caller`` (a user's Principal, or a DIMSE peer as ModalityCaller).

    Never raises for a bad instance: the outcome carries the PS3.18 Failure Reason and a sentence. Raises
    Forbidden when the caller may not store at all. ``expected_study_uid`` is the study of a STOW-RS
    ``/studies/{study}`` URL; ``sha256``/``size`` may be passed when the caller hashed the file already.
    """
    if isinstance(source, Path):
        return await _store_file(archive, source, caller, origin, expected_study_uid, sha256, size)
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="imaging-store-"))
    try:
        path = work / "instance.dcm"
        sha256, size = await spool(source, path)
        return await _store_file(archive, path, caller, origin, expected_study_uid, sha256, size)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


async def _store_file(archive: Archive, path: Path, caller: Caller, origin: Origin,
                      expected_study_uid: str | None, sha256: str | None, size: int | None) -> StoreOutcome:
    principal = caller.principal() if isinstance(caller, ModalityCaller) else caller
    if not isinstance(caller, ModalityCaller):
        require_store_role(principal)
    if sha256 is not None and size is not None:
        return await store_checked(archive, path, principal, caller, origin, expected_study_uid, sha256, size)
    digest, length = await asyncio.to_thread(hash_file, path)
    return await store_checked(archive, path, principal, caller, origin, expected_study_uid, digest, length)


def too_large(archive: Archive, size: int) -> StoreOutcome | None:
    if size > archive.settings.max_instance_bytes:
        return failed(FAILURE_OUT_OF_RESOURCES, f"the instance is larger than {archive.settings.max_instance_bytes}"
                      " bytes")
    return None


def parse_checked(archive: Archive, source: Path | bytes,
                  expected_study_uid: str | None) -> ParsedInstance | StoreOutcome:
    """parse_instance (synchronous: run it in a worker thread), or the failed outcome of a bad instance."""
    try:
        parsed = parse_instance(source, bulk_data_threshold=archive.settings.bulk_data_threshold)
    except InvalidInstance as exc:
        return failed(exc.failure_reason, exc.detail)
    if expected_study_uid is not None and parsed.study_uid != expected_study_uid:
        return failed(FAILURE_DOES_NOT_MATCH, "the instance's Study Instance UID differs from the study in the"
                      " request URL", **_ids(parsed))
    return parsed


async def store_checked(archive: Archive, path: Path | bytes, principal: Principal, caller: Caller, origin: Origin,
                         expected_study_uid: str | None, sha256: str, size: int) -> StoreOutcome:
    if (refused := too_large(archive, size)) is not None:
        return refused
    parsed = await asyncio.to_thread(parse_checked, archive, path, expected_study_uid)
    if isinstance(parsed, StoreOutcome):
        return parsed
    ids = _ids(parsed)
    visible = visible_facilities(principal)
    async with archive.db.transaction(principal) as conn:
        existing = await repo.find_instance(conn, parsed.sop_instance_uid, visible)
        owner = await repo.study_owner(conn, parsed.study_uid, visible)
    if existing is not None:
        if existing.sha256 == sha256:
            return StoreOutcome(StoreStatus.DUPLICATE, **ids, instance_id=existing.id, facility_id=existing.facility_id,
                                detail="this SOP Instance is already archived with the same bytes")
        if (existing.study_uid, existing.series_uid) != (parsed.study_uid, parsed.series_uid):
            return failed(FAILURE_DUPLICATE_SOP, "a SOP Instance with this UID is archived in another study or"
                          " series", **ids)
    facility = owner or principal.facility_id
    key = object_key(facility, parsed, sha256 if existing is not None else None)
    try:
        await archive.store.put(key, path if isinstance(path, bytes) else file_chunks(path),
                                content_type="application/dicom", length=size)
    except Exception as exc:
        log.warning("object store write failed", extra={"error_type": type(exc).__name__})
        return failed(FAILURE_OUT_OF_RESOURCES, "the object store is not available; retry later", **ids)
    return await index_written(archive, principal, caller, origin, parsed, key, sha256, size, facility)


async def index_written(archive: Archive, principal: Principal, caller: Caller, origin: Origin, parsed: ParsedInstance,
                        key: str, sha256: str, size: int, facility: UUID) -> StoreOutcome:
    """The index rows of an instance whose object is written at ``key``; the object is removed if refused."""
    ids = _ids(parsed)
    try:
        outcome, stale_key = await _index(archive, principal, caller, origin, parsed, key, sha256, size, facility)
    except _Refused as exc:
        await remove_object(archive.store, key)
        return failed(exc.reason, exc.detail, **ids)
    except asyncpg.UniqueViolationError:
        await remove_object(archive.store, key)
        return failed(FAILURE_DUPLICATE_SOP, "a SOP Instance with this UID is archived in another study, series"
                      " or facility", **ids)
    except BaseException as exc:
        await remove_object(archive.store, key)
        if isinstance(exc, Exception):
            log.exception("indexing an instance failed")
            return failed(FAILURE_PROCESSING, "the archive could not index the instance; retry later", **ids)
        raise
    if stale_key is not None:  # after the commit: the copy no row points at any more
        await remove_object(archive.store, stale_key)
    return outcome


async def _index(archive: Archive, principal: Principal, caller: Caller, origin: Origin, p: ParsedInstance,
                 key: str, sha256: str, size: int, facility: UUID) -> tuple[StoreOutcome, str | None]:
    """The index rows and the event in one transaction; also the object key to remove after the commit."""
    ids = _ids(p)
    visible = visible_facilities(principal)
    async with archive.db.transaction(principal) as conn:
        study = await repo.lock_study(conn, p.study_uid, visible)
        new_study = False
        if study is None:
            patient = await repo.upsert_patient(conn, facility, p)
            created = await repo.insert_study(conn, facility, patient, p)
            if created is not None:
                study, new_study = repo.StudyRef(created, facility, True), True
            else:  # created meanwhile by another request, or owned by a facility the caller cannot see
                study = await repo.lock_study(conn, p.study_uid, visible)
                if study is None:
                    raise _Refused(FAILURE_NOT_AUTHORIZED, "this study is archived by another facility")
        series = await repo.series_row(conn, p.series_uid)
        new_series = False
        if series is None:
            series_id = await repo.insert_series(conn, study.facility_id, study.id, p)
            if series_id is None:
                raise _Refused(FAILURE_NOT_AUTHORIZED, "this series is archived by another facility")
            new_series = True
        else:
            series_id = series["id"]
            if series["study_ref"] != study.id:
                raise _Refused(FAILURE_DOES_NOT_MATCH, "the Series Instance UID belongs to another study")
        values = {"facility_id": study.facility_id, "source_facility_id": principal.facility_id,
                  "study_ref": study.id, "series_ref": series_id, "object_key": key, "size_bytes": size,
                  "sha256": sha256, "origin": origin.value,
                  "source_ae_title": caller.ae_title if isinstance(caller, ModalityCaller) else None,
                  "received_by": None if isinstance(caller, ModalityCaller) else principal.user_id}
        existing = await repo.find_instance(conn, p.sop_instance_uid, visible, lock=True)
        if existing is not None:
            if existing.sha256 == sha256:  # the same copy arrived meanwhile
                return (StoreOutcome(StoreStatus.DUPLICATE, **ids, instance_id=existing.id, study_id=study.id,
                                     facility_id=study.facility_id),
                        key if existing.object_key != key else None)
            if (existing.study_uid, existing.series_uid) != (p.study_uid, p.series_uid):
                raise _Refused(FAILURE_DUPLICATE_SOP, "a SOP Instance with this UID is archived in another study"
                               " or series")
            await repo.replace_instance(conn, existing.id, values, p)
            await repo.count_instance(conn, study.id, series_id, new_series=False, modality=p.modality,
                                      instances=0, size_delta=size - existing.size_bytes)
            return (StoreOutcome(StoreStatus.REPLACED, **ids, warning_reason=WARNING_REPLACED,
                                 detail="an earlier copy of this SOP Instance with other bytes was replaced",
                                 instance_id=existing.id, study_id=study.id, facility_id=study.facility_id),
                    existing.object_key if existing.object_key != key else None)
        instance_id = await repo.insert_instance(conn, values, p)
        await repo.count_instance(conn, study.id, series_id, new_series=new_series, modality=p.modality,
                                  instances=1, size_delta=size)
        if new_study:
            await record_event(conn, "imaging", "imaging.study_received", facility_id=study.facility_id,
                               subject_type="study", subject_id=study.id,
                               payload={"modality": p.modality, "origin": origin.value,
                                        "source_facility_id": str(principal.facility_id)})
    return (StoreOutcome(StoreStatus.STORED, **ids, instance_id=instance_id, study_id=study.id,
                         new_study=new_study, facility_id=study.facility_id), None)


def _ids(p: ParsedInstance) -> dict[str, Any]:
    return {"sop_class_uid": p.sop_class_uid, "sop_instance_uid": p.sop_instance_uid, "study_uid": p.study_uid,
            "series_uid": p.series_uid}


async def remove_object(store: ObjectStore, key: str) -> None:
    try:
        await store.delete(key)
    except Exception:  # the sweeper reconciles what is left
        log.warning("could not remove an object after a failed store", extra={"key": key})
