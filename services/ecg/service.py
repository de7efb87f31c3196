"""Domain rules of ECG recordings: who may upload and see them, storing them, and reading their signal.

Upload order (ARCHITECTURE.md): parse first (nothing is stored for an unreadable file), write the objects,
then the row and its event in one transaction; if anything fails after an object was written, the objects
are removed. The analysis job is queued after the commit, with the id only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO
from uuid import UUID

import numpy as np

from common.auth import Principal, Role
from common.db import Database
from common.errors import Forbidden, Invalid, NotFound
from common.events import record_event
from common.storage import ObjectStore
from services.ecg import grants, jobs
from services.ecg import repository as repo
from services.ecg.ingest import ParsedUpload, StagedFile, parse_staged, reading_dir
from services.ecg.schemas import PRIORITIES, STATUSES, OriginalFile, Recording, RecordingPage
from services.ecg.settings import EcgSettings, ecg_settings
from services.ecg.signal_store import byte_range, decode, resample

log = logging.getLogger("telehealth.ecg")
UPLOADER_ROLES = (Role.TOWNSHIP_DOCTOR, Role.TECHNICIAN)
MAX_PAGE = 200


@dataclass(frozen=True)
class UploadMeta:
    patient_id: UUID | None
    priority: str
    clinical_note: str | None


@dataclass(frozen=True)
class SignalWindow:
    fs: float
    start_s: float
    lead_names: list[str]
    data: np.ndarray  # leads x samples, float32 mV (NaN: no data)


def require_clinical(principal: Principal) -> None:
    if not principal.is_clinical:
        raise Forbidden("ECG recordings are open to clinical roles only")


def object_prefix(facility_id: UUID, recording_id: UUID) -> str:
    return f"ecg/{facility_id}/{recording_id}/"


async def file_chunks(path: Path, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """Stream a local file without holding it (reads run in a worker thread)."""
    fh = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(fh.read, size):
            yield chunk
    finally:
        await asyncio.to_thread(fh.close)


async def upload_recording(
    db: Database,
    store: ObjectStore,
    principal: Principal,
    staged: Sequence[StagedFile],
    work: Path,
    meta: UploadMeta,
    *,
    check_patient: Callable[[UUID], Awaitable[None]] | None = None,
    settings: EcgSettings | None = None,
) -> Recording:
    """Store an uploaded ECG at the caller's facility and queue its analysis."""
    s = settings or ecg_settings()
    if not principal.has_role(*UPLOADER_ROLES):
        raise Forbidden("uploading ECGs needs the township_doctor or technician role")
    if meta.priority not in PRIORITIES:
        raise Invalid(f"priority must be one of {', '.join(PRIORITIES)}")
    if not staged:
        raise Invalid("no file uploaded: send the ECG as the multipart field 'file'")
    if meta.patient_id is not None and check_patient is not None:
        await check_patient(meta.patient_id)

    main = await asyncio.to_thread(reading_dir, list(staged), work, s)
    parsed: ParsedUpload = await asyncio.to_thread(parse_staged, main, work / "signal.npy", s)

    recording_id = uuid.uuid4()
    prefix = object_prefix(principal.facility_id, recording_id)
    written: list[str] = []
    try:
        originals = []
        for f in staged:
            key = f"{prefix}original/{f.name}"
            await store.put(key, file_chunks(f.path), content_type=f.content_type, length=f.size)
            written.append(key)
            originals.append(OriginalFile(name=f.name, key=key, size=f.size, sha256=f.sha256,
                                          content_type=f.content_type).model_dump())
        signal_key = f"{prefix}signal.npy"
        await store.put(signal_key, file_chunks(parsed.signal_path), content_type="application/x-npy",
                        length=parsed.signal_path.stat().st_size)
        written.append(signal_key)
        async with db.transaction(principal) as conn:
            await repo.insert_recording(conn, {
                "id": recording_id, "facility_id": principal.facility_id, "patient_id": meta.patient_id,
                "uploaded_by": principal.user_id, "priority": meta.priority, "clinical_note": meta.clinical_note,
                "source_format": parsed.source_format, "original_files": originals, "signal_key": signal_key,
                "signal_layout": parsed.layout.model_dump(), "fs": parsed.fs, "lead_names": parsed.lead_names,
                "n_samples": parsed.n_samples, "duration_s": parsed.duration_s, "start_time": parsed.start_time,
                "device": parsed.device, "device_measurements": parsed.device_measurements,
                "file_patient": parsed.file_patient, "warnings": parsed.warnings,
            })
            await record_event(
                conn, "ecg", "ecg.recording_received", facility_id=principal.facility_id,
                subject_type="recording", subject_id=recording_id,
                payload={"format": parsed.source_format, "priority": meta.priority, "leads": len(parsed.lead_names),
                         "duration_s": round(parsed.duration_s, 2), "fs": parsed.fs},
            )
    except BaseException:
        await _remove(store, written)
        raise
    await jobs.send(jobs.ANALYZE, recording_id)
    return await get_recording(db, principal, recording_id)


async def _remove(store: ObjectStore, keys: list[str]) -> None:
    for key in keys:
        try:
            await store.delete(key)
        except Exception:  # the sweeper reconciles what is left
            log.warning("could not remove an object after a failed upload", extra={"key": key})


async def get_recording(db: Database, principal: Principal, recording_id: UUID) -> Recording:
    require_clinical(principal)
    rec = await grants.read_with_grants(db, principal, recording_id,
                                        lambda conn, visible: repo.get_recording(conn, recording_id, visible))
    if rec is None:
        raise NotFound("no such recording")
    return rec


async def list_recordings(
    db: Database,
    principal: Principal,
    *,
    statuses: Sequence[str] | None = None,
    priority: str | None = None,
    facility_id: UUID | None = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    patient_id: UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> RecordingPage:
    """Recordings of the facilities the caller may see, newest first."""
    require_clinical(principal)
    bad = [x for x in statuses or () if x not in STATUSES]
    if bad:
        raise Invalid(f"status must be among {', '.join(STATUSES)} (got {', '.join(bad)})")
    if priority is not None and priority not in PRIORITIES:
        raise Invalid(f"priority must be one of {', '.join(PRIORITIES)}")
    limit = max(1, min(limit, MAX_PAGE))
    async with db.transaction(principal) as conn:
        items = await repo.list_recordings(
            conn, principal.visible_facility_ids, statuses=statuses, priority=priority, facility_id=facility_id,
            received_from=received_from, received_to=received_to, patient_id=patient_id, limit=limit,
            offset=max(0, offset),
        )
    return RecordingPage(items=items, limit=limit, offset=offset)


async def signal_window(
    db: Database,
    store: ObjectStore,
    principal: Principal,
    recording_id: UUID,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    fs: float | None = None,
    leads: Sequence[str] | None = None,
    settings: EcgSettings | None = None,
) -> SignalWindow:
    """Leads x samples of a time window, resampled to ``fs`` when asked (viewer; ranged read of the object)."""
    s = settings or ecg_settings()
    require_clinical(principal)
    info = await grants.read_with_grants(db, principal, recording_id,
                                         lambda conn, visible: repo.signal_info(conn, recording_id, visible))
    if info is None:
        raise NotFound("no such recording")
    key, layout, source_fs, names = info
    chosen = list(range(len(names)))
    if leads:
        unknown = [name for name in leads if name not in names]
        if unknown:
            raise Invalid(f"unknown lead(s) {', '.join(unknown)}; this recording has {', '.join(names)}")
        chosen = [names.index(name) for name in leads]
    if start_s < 0 or (duration_s is not None and duration_s <= 0) or (fs is not None and fs <= 0):
        raise Invalid("start must be >= 0, duration and fs > 0")
    first = min(round(start_s * source_fs), layout.samples)
    last = layout.samples if duration_s is None else min(layout.samples, first + round(duration_s * source_fs))
    out_fs = min(fs, source_fs) if fs else source_fs
    points = (last - first) * len(chosen) * out_fs / source_fs
    if points > s.signal_max_points:
        raise Invalid(f"window of {int(points)} points is larger than {s.signal_max_points}: "
                      "ask for a shorter duration, fewer leads or a lower fs")
    if last <= first:
        return SignalWindow(out_fs, first / source_fs, [names[i] for i in chosen],
                            np.zeros((len(chosen), 0), dtype=np.float32))
    offset, length = byte_range(layout, first, last)
    raw = bytearray()
    async for chunk in store.get(key, offset=offset, length=length):
        raw.extend(chunk)
    x = decode(bytes(raw), layout)[:, chosen]
    y, actual = resample(x, source_fs, out_fs) if out_fs < source_fs else (x, source_fs)
    return SignalWindow(actual, first / source_fs, [names[i] for i in chosen], np.ascontiguousarray(y.T))


async def zip_originals(store: ObjectStore, files: Sequence[OriginalFile], target: Path) -> None:
    """The original files of a multi-file upload as one uncompressed zip on local disk (streamed in)."""

    def open_member(zf: zipfile.ZipFile, name: str) -> IO[bytes]:
        return zf.open(name, "w", force_zip64=True)

    zf = await asyncio.to_thread(zipfile.ZipFile, target, "w", zipfile.ZIP_STORED)
    try:
        for f in files:
            member = await asyncio.to_thread(open_member, zf, f.name)
            try:
                async for chunk in store.get(f.key):
                    await asyncio.to_thread(member.write, chunk)
            finally:
                await asyncio.to_thread(member.close)
    finally:
        await asyncio.to_thread(zf.close)


async def original_files(
    db: Database, principal: Principal, recording_id: UUID, name: str | None = None
) -> list[OriginalFile]:
    """The uploaded file(s) as stored byte-for-byte; one when ``name`` picks it."""
    require_clinical(principal)
    async with db.transaction(principal) as conn:
        files = await repo.original_files(conn, recording_id, principal.visible_facility_ids)
    if files is None:
        raise NotFound("no such recording")
    out = [OriginalFile(**f) for f in files]
    if name is not None:
        out = [f for f in out if f.name == name]
        if not out:
            raise NotFound(f"this recording has no original file named {name!r}")
    return out
