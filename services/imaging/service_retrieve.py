"""WADO-RS (PS3.18 10.4): instances as multipart/related application/dicom with transfer-syntax negotiation,
metadata from the index, frames and bulk data; and a whole study as a ZIP.

Originals stream from object storage chunk by chunk; an instance that must be transcoded is fetched to a
temporary file, transcoded in a worker thread and streamed from there. Everything the caller may not see
answers 404 exactly like something that does not exist.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from common.auth import Principal
from common.errors import AppError, NotFound
from common.storage import ObjectStore
from services.imaging import repository_retrieve as rr
from services.imaging.dicomweb_multipart import MediaType, closing, new_boundary, parse_accept, part_head
from services.imaging.index_json import BULK_PREFIX
from services.imaging.repository_retrieve import StoredInstance
from services.imaging.service import Archive, file_chunks, require_reader, visible_facilities
from services.imaging.service_transcode import UNCOMPRESSED_TARGETS, TranscodeError, can_transcode, transcode
from services.imaging.sharing import granted_scope

log = logging.getLogger("telehealth.imaging.retrieve")
EXPLICIT_LE = "1.2.840.10008.1.2.1"
ANY_TS = "*"


class NotAcceptable(AppError):
    status, code = 406, "not_acceptable"


@dataclass(frozen=True)
class InstancePlan:
    instance: StoredInstance
    target: str  # the transfer syntax it is sent in

    @property
    def transcode(self) -> bool:
        return self.target != self.instance.transfer_syntax_uid


@dataclass
class Retrieval:
    plans: list[InstancePlan]
    boundary: str
    length: int | None  # Content-Length when nothing is transcoded


async def find_instances(archive: Archive, principal: Principal, study: str, series: str | None = None,
                         sop: str | None = None) -> list[StoredInstance]:
    """The visible instances of a study / series / one instance, or 404 (hidden answers like missing)."""
    require_reader(principal)
    async with archive.db.transaction(principal) as conn:
        found = await rr.instances(conn, visible_facilities(principal), study, series, sop)
    if not found and (granted := await granted_scope(archive, principal, study)) is not None:  # sharing.py
        async with archive.db.transaction(granted[0]) as conn:
            found = await rr.instances(conn, granted[1], study, series, sop)
    if not found:
        raise NotFound("no such instance" if sop else "no such series" if series else "no such study")
    return found


def requested_syntaxes(accept: str | None) -> list[str]:
    """Transfer syntaxes an Accept header asks for application/dicom, best first ('*': any)."""
    entries = parse_accept(accept)
    if not entries:
        return [EXPLICIT_LE]
    wanted: list[str] = []
    for e in entries:
        kind = e.params.get("type", "application/dicom").lower() if e.type == "multipart/related" else e.type
        if e.type in ("*/*", "multipart/*") or kind in ("application/dicom", "application/*", "*/*"):
            wanted.append(e.params.get("transfer-syntax", EXPLICIT_LE))
    if not wanted:
        raise NotAcceptable('instances are sent as multipart/related; type="application/dicom" only')
    return wanted


def negotiate(accept: str | None, instances: Iterable[StoredInstance], max_transcode_bytes: int) -> list[InstancePlan]:
    wanted = requested_syntaxes(accept)
    plans = []
    for inst in instances:
        target = _choose(inst, wanted, max_transcode_bytes)
        if target is None:
            raise NotAcceptable(
                f"instance {inst.sop_instance_uid} is stored in transfer syntax {inst.transfer_syntax_uid} and"
                f" cannot be sent in {', '.join(wanted)}; ask for transfer-syntax=* to get it as stored")
        plans.append(InstancePlan(inst, target))
    return plans


def _choose(inst: StoredInstance, wanted: list[str], limit: int) -> str | None:
    native = inst.transfer_syntax_uid
    for ts in wanted:
        if ts in (ANY_TS, native):
            return native
        if not inst.has_pixels and ts not in UNCOMPRESSED_TARGETS:
            return native  # the transfer syntax only concerns pixel data: none here
        if inst.size_bytes <= limit and can_transcode(native, ts, has_pixels=inst.has_pixels):
            return ts
    return None


def _content_type(plan: InstancePlan) -> str:
    return f"application/dicom; transfer-syntax={plan.target}"


def _location(base: str, inst: StoredInstance) -> str:
    return f"{base}/studies/{inst.study_uid}/series/{inst.series_uid}/instances/{inst.sop_instance_uid}"


async def plan_retrieval(archive: Archive, principal: Principal, accept: str | None, study: str,
                         series: str | None = None, sop: str | None = None, *, base: str = "") -> Retrieval:
    found = await find_instances(archive, principal, study, series, sop)
    plans = negotiate(accept, found, archive.settings.max_transcode_bytes)
    boundary = new_boundary()
    length: int | None = None
    if not any(p.transcode for p in plans):
        length = len(closing(boundary))
        for i, p in enumerate(plans):
            head = part_head(boundary, _content_type(p), location=_location(base, p.instance),
                             length=p.instance.size_bytes, first=i == 0)
            length += len(head) + p.instance.size_bytes
    return Retrieval(plans, boundary, length)


async def fetch_to(store: ObjectStore, key: str, target: Path) -> None:
    fh = await asyncio.to_thread(target.open, "wb")
    try:
        async for chunk in store.get(key):
            await asyncio.to_thread(fh.write, chunk)
    finally:
        await asyncio.to_thread(fh.close)


async def instance_body(archive: Archive, plan: InstancePlan) -> AsyncIterator[bytes]:
    """One instance's bytes in its plan's transfer syntax: the stored object, or transcoded via a temp file."""
    if not plan.transcode:
        async for chunk in archive.store.get(plan.instance.object_key):
            yield chunk
        return
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="imaging-wado-"))
    try:
        original, converted = work / "original.dcm", work / "converted.dcm"
        await fetch_to(archive.store, plan.instance.object_key, original)
        try:
            await asyncio.to_thread(transcode, original, converted, plan.target)
        except TranscodeError as exc:  # the answer has started: end it short, loudly
            log.warning("transcoding failed mid-retrieve", extra={"error": str(exc), "target": plan.target})
            raise
        async for chunk in file_chunks(converted):
            yield chunk
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


async def stream_retrieval(archive: Archive, r: Retrieval, *, base: str = "") -> AsyncIterator[bytes]:
    """The multipart body: each instance as stored, or transcoded (then without a part Content-Length)."""
    for i, p in enumerate(r.plans):
        length = None if p.transcode else p.instance.size_bytes
        yield part_head(r.boundary, _content_type(p), location=_location(base, p.instance), length=length,
                        first=i == 0)
        async for chunk in instance_body(archive, p):
            yield chunk
    yield closing(r.boundary, empty=not r.plans)


async def metadata(archive: Archive, principal: Principal, accept: str | None, base: str, study: str,
                   series: str | None = None, sop: str | None = None) -> bytes:
    """The DICOM JSON of the instances, from the index (no file is read)."""
    entries = parse_accept(accept)
    if entries and not any(_json_ok(e) for e in entries):
        raise NotAcceptable("metadata is available as application/dicom+json only")
    require_reader(principal)
    async with archive.db.transaction(principal) as conn:
        texts = await rr.metadata(conn, visible_facilities(principal), study, series, sop)
    if not texts and (granted := await granted_scope(archive, principal, study)) is not None:  # sharing.py
        async with archive.db.transaction(granted[0]) as conn:
            texts = await rr.metadata(conn, granted[1], study, series, sop)
    if not texts:
        raise NotFound("no such instance" if sop else "no such series" if series else "no such study")
    body = ("[" + ",".join(texts) + "]").encode()
    return body.replace(b'"' + BULK_PREFIX.encode(), b'"' + base.encode())


def _json_ok(e: MediaType) -> bool:
    return e.type in ("application/dicom+json", "application/json", "*/*", "application/*")


class _ZipSink:
    """A write-only file object for zipfile that hands out what was written (zipfile streams to it)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


async def study_zip(archive: Archive, instances: list[StoredInstance]) -> AsyncIterator[bytes]:
    """The originals as an uncompressed ZIP (ZIP64), streamed: <study>/<series>/<sop>.dcm."""
    sink = _ZipSink()
    zf = zipfile.ZipFile(cast(IO[bytes], sink), mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)
    try:
        for inst in instances:
            name = f"{inst.study_uid}/{inst.series_uid}/{inst.sop_instance_uid}.dcm"
            with zf.open(name, mode="w", force_zip64=True) as member:
                async for chunk in archive.store.get(inst.object_key):
                    member.write(chunk)
                    if (data := sink.take()):
                        yield data
            yield sink.take()
    finally:
        zf.close()
    yield sink.take()
