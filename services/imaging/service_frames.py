"""WADO-RS frames and bulk data (PS3.18 10.4.1.1.6/7).

Frames of uncompressed little-endian instances are byte ranges of the stored object (no decoding, no whole
file read). Compressed frames are sent as stored when the caller accepts their media type (or
``transfer-syntax=*``), or decoded to uncompressed ``application/octet-stream`` (the default) when the
pixel-data plugins can. Other bulk data (overlays, waveforms, encapsulated documents...) is read from the
file by its tag path (``SEQ/item/TAG``, as in the BulkDataURIs of the metadata).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pydicom

from common.auth import Principal
from common.errors import BadRequest, NotFound
from services.imaging.dicomweb_multipart import MediaType, closing, new_boundary, parse_accept, part_head
from services.imaging.index_json import PIXEL_TAGS, walk_bulk_path
from services.imaging.repository_retrieve import StoredInstance
from services.imaging.service import Archive
from services.imaging.service_retrieve import ANY_TS, EXPLICIT_LE, NotAcceptable, fetch_to, find_instances
from services.imaging.service_transcode import (
    FRAME_MEDIA,
    TranscodeError,
    can_decode,
    decoded_frame,
    encapsulated_frame,
)

NATIVE_LE = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})
UNCOMPRESSED = NATIVE_LE | {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}
MAX_FRAMES_PER_REQUEST = 10_000
MEDIA_ALIASES = {"image/x-dicom-rle": "image/dicom-rle", "image/x-jls": "image/jls"}


@dataclass
class FramePlan:
    instance: StoredInstance
    frames: list[int]     # 1-based
    mode: str             # "range" | "stored" | "decode"
    content_type: str
    boundary: str


def parse_frame_list(text: str) -> list[int]:
    try:
        frames = [int(f) for f in text.replace("%2C", ",").split(",") if f.strip()]
    except ValueError as exc:
        raise BadRequest("frame numbers must be integers, e.g. /frames/1,2,3") from exc
    if not frames or any(f < 1 for f in frames) or len(frames) > MAX_FRAMES_PER_REQUEST:
        raise BadRequest("frame numbers start at 1; give at least one")
    return frames


def _frame_size(inst: StoredInstance) -> int | None:
    if None in (inst.rows, inst.columns, inst.bits_allocated) or (inst.bits_allocated or 0) % 8:
        return None
    return int(inst.rows or 0) * int(inst.columns or 0) * int(inst.samples_per_pixel or 1) * int(
        inst.bits_allocated or 0) // 8


def _rangeable(inst: StoredInstance) -> bool:
    size = _frame_size(inst)
    return (inst.transfer_syntax_uid in NATIVE_LE and inst.pixel_data_offset is not None and size is not None
            and size > 0 and size * (inst.number_of_frames or 1) <= (inst.pixel_data_length or 0))


def negotiate_frames(accept: str | None, inst: StoredInstance) -> tuple[str, str]:
    """(mode, part Content-Type) for the frames of ``inst`` under ``accept``; 406 when impossible."""
    native = inst.transfer_syntax_uid
    media = FRAME_MEDIA.get(native)
    entries = parse_accept(accept) or [MediaType("multipart/related", {"type": "application/octet-stream"})]
    for e in entries:
        kind = e.params.get("type", "application/octet-stream").lower() if e.type == "multipart/related" else e.type
        kind = MEDIA_ALIASES.get(kind, kind)
        ts = e.params.get("transfer-syntax")
        if kind in ("*/*", "application/*"):
            kind, ts = "application/octet-stream", ts or EXPLICIT_LE
        if kind == "application/octet-stream":
            ts = ts or EXPLICIT_LE
            if native in UNCOMPRESSED and ts in (ANY_TS, EXPLICIT_LE, native):
                mode = "range" if _rangeable(inst) else "decode"
                return mode, f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
            if ts == ANY_TS or ts == native:
                return "stored", f"{media or 'application/octet-stream'}; transfer-syntax={native}"
            if ts == EXPLICIT_LE and can_decode(native):
                return "decode", f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
        elif media is not None and (kind == media or kind == media.split("/")[0] + "/*") and ts in (None, ANY_TS,
                                                                                                    native):
            return "stored", f"{media}; transfer-syntax={native}"
    raise NotAcceptable(f"frames of this instance are available as application/octet-stream (uncompressed) or"
                        f" {media or 'application/octet-stream'} with transfer-syntax={native}")


async def plan_frames(archive: Archive, principal: Principal, accept: str | None, study: str, series: str,
                      sop: str, frames: str | None) -> FramePlan:
    """Frames ``frames`` ('1,2,3'; None: all) of a visible instance, and how they will be sent."""
    inst = (await find_instances(archive, principal, study, series, sop))[0]  # 404 before anything else
    numbers = parse_frame_list(frames) if frames is not None else None
    if not inst.has_pixels:
        raise NotFound("this instance has no pixel data")
    count = inst.number_of_frames or 1
    wanted = numbers if numbers is not None else list(range(1, count + 1))
    beyond = [f for f in wanted if f > count]
    if beyond:
        raise NotFound(f"frame {beyond[0]} does not exist: the instance has {count} frame(s)")
    mode, content_type = negotiate_frames(accept, inst)
    return FramePlan(inst, wanted, mode, content_type, new_boundary())


def _frames_from_file(path: Path, plan: FramePlan) -> list[bytes]:
    count = plan.instance.number_of_frames or 1
    if plan.mode == "stored" and plan.instance.transfer_syntax_uid not in UNCOMPRESSED:
        return [encapsulated_frame(path, f - 1, count) for f in plan.frames]
    return [decoded_frame(path, f - 1) for f in plan.frames]


async def stream_range_frames(archive: Archive, plan: FramePlan) -> AsyncIterator[bytes]:
    """Frames of an uncompressed little-endian instance: byte ranges of the stored object."""
    inst = plan.instance
    size = _frame_size(inst) or 0
    for i, f in enumerate(plan.frames):
        yield part_head(plan.boundary, plan.content_type, length=size, first=i == 0)
        offset = (inst.pixel_data_offset or 0) + (f - 1) * size
        async for chunk in archive.store.get(inst.object_key, offset=offset, length=size):
            yield chunk
    yield closing(plan.boundary)


async def prepare_frames(archive: Archive, plan: FramePlan) -> list[bytes] | None:
    """Decode compressed frames before the answer starts, so that a decoder failure is a clean 406."""
    if plan.mode == "range":
        return None
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="imaging-frames-"))
    try:
        await fetch_to(archive.store, plan.instance.object_key, work / "instance.dcm")
        try:
            return await asyncio.to_thread(_frames_from_file, work / "instance.dcm", plan)
        except TranscodeError as exc:
            raise NotAcceptable(f"the frames cannot be decoded ({exc}); ask for transfer-syntax=*") from exc
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


async def frame_parts(plan: FramePlan, frames: list[bytes]) -> AsyncIterator[bytes]:
    for i, data in enumerate(frames):
        yield part_head(plan.boundary, plan.content_type, length=len(data), first=i == 0)
        yield data
    yield closing(plan.boundary)


def is_pixel_path(tag_path: str) -> bool:
    head = tag_path.strip("/").split("/")[0]
    try:
        return "/" not in tag_path.strip("/") and int(head, 16) in PIXEL_TAGS
    except ValueError:
        return False


async def bulk_value(archive: Archive, principal: Principal, accept: str | None, study: str, series: str, sop: str,
                     tag_path: str) -> bytes:
    """The value of a non-pixel bulk data element, by its tag path."""
    entries = parse_accept(accept)
    if entries and not any(e.type in ("*/*", "application/octet-stream") or
                           e.params.get("type", "").lower() in ("application/octet-stream", "*/*")
                           for e in entries):
        raise NotAcceptable('bulk data is sent as multipart/related; type="application/octet-stream"')
    inst = (await find_instances(archive, principal, study, series, sop))[0]
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="imaging-bulk-"))
    try:
        await fetch_to(archive.store, inst.object_key, work / "instance.dcm")
        value = await asyncio.to_thread(_read_value, work / "instance.dcm", tag_path)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    if value is None:
        raise NotFound("no such bulk data element in this instance")
    return value


def _read_value(path: Path, tag_path: str) -> bytes | None:
    ds = pydicom.dcmread(path, defer_size=4096)
    for elem in walk_bulk_path(ds, tag_path):
        value = elem.value
        return bytes(value) if isinstance(value, bytes | bytearray) else None
    return None
