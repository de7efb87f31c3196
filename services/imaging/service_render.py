"""Rendered resources and thumbnails (PS3.18 10.4.1.1.3-5, 10.7) and WADO-URI images: which instance and
frame to render, the object-storage cache, and rendering in a worker thread.

- instance ``/rendered``: the first frame (a single image); ``/frames/{list}/rendered``: one image for one
  frame, a ``multipart/related`` of images for several; series and study ``/rendered``: a
  ``multipart/related`` with the first frame of each instance that has pixel data (instances that cannot
  be rendered are left out; 422 when none can).
- ``/thumbnail``: one small JPEG (or PNG) of a representative frame: the middle image instance of the
  series (of the first series with images, for a study), its first frame, fitted in 128x128 by default.

Every render is cached in object storage under ``imaging/thumbs/<sop>/<sha>-<options>.<ext>`` (the stored
copy's hash is in the key, so a replaced instance never answers an old image), written beside the answer
rather than before it; visibility is checked on every request before the cache is read. Instances up to
IN_MEMORY_BYTES are read into memory and parsed once; larger ones go through a temporary file. Rendering
runs in a worker thread behind a small capacity limiter so the event loop stays free and two CPU-heavy
decodes at most run at once.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from common.auth import Principal
from common.errors import BadRequest, Invalid, NotFound
from services.imaging.dicomweb_multipart import closing, new_boundary, part_head
from services.imaging.render import RenderError, RenderOptions, UnsupportedMedia, render_file
from services.imaging.repository_retrieve import StoredInstance
from services.imaging.service import Archive
from services.imaging.service_frames import parse_frame_list
from services.imaging.service_retrieve import NotAcceptable, fetch_to, find_instances

log = logging.getLogger("telehealth.imaging.render")
CACHE_PREFIX = "imaging/thumbs"
THUMBNAIL_VIEWPORT = (128, 128)
THUMBNAIL_QUALITY = 75
RENDER_THREADS = 2
IN_MEMORY_BYTES = 64 * 1024 * 1024  # instances up to this size are rendered from memory, larger from a file
_limiter: anyio.CapacityLimiter | None = None
_writes: set[asyncio.Task[None]] = set()  # cache writes in flight (a reference keeps each task alive)
PRERENDER_PENDING = 64  # instances waiting to be prerendered at most (their bytes are held meanwhile)
_pending = 0


class Unrenderable(Invalid):
    """422: the image cannot be rendered (no pixel data, undecodable)."""


@dataclass
class Rendered:
    """One image, or several for a multipart answer."""
    media: str
    images: list[bytes]
    multipart: bool

    def single(self) -> bytes:
        return self.images[0]


def _threads() -> anyio.CapacityLimiter:
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(RENDER_THREADS)
    return _limiter


def cache_key(inst: StoredInstance, frame: int, opts: RenderOptions) -> str:
    return key_of(inst.sop_instance_uid, inst.sha256, frame, opts)


def key_of(sop: str, sha256: str, frame: int, opts: RenderOptions) -> str:
    return f"{CACHE_PREFIX}/{sop}/{sha256[:16]}-f{frame}-{opts.cache_tag()}.{opts.extension}"


def prerender(archive: Archive, stored: list[tuple[str, str, bytes]]) -> None:
    """After a STOW-RS answer: render the first frame of each newly stored image (``(sop, sha256, bytes)``)
    with the default options, which is what the viewer asks for first (``frames/1/rendered?quality=90``), into
    the cache, in the background. At most PRERENDER_PENDING instances wait at once (their bytes are held);
    beyond that they are rendered on first view as before."""
    global _pending
    chosen = stored[:max(0, PRERENDER_PENDING - _pending)]
    if not chosen:
        return
    _pending += len(chosen)
    task = asyncio.create_task(_prerender(archive, chosen))
    _writes.add(task)
    task.add_done_callback(_writes.discard)


async def _prerender(archive: Archive, chosen: list[tuple[str, str, bytes]]) -> None:
    global _pending
    opts = RenderOptions()
    done = 0
    try:
        for sop, sha256, data in chosen:
            done += 1
            _pending -= 1
            try:
                image = await anyio.to_thread.run_sync(render_file, data, 1, opts, limiter=_threads())
                await archive.store.put(key_of(sop, sha256, 1, opts), image, content_type=opts.media)
            except RenderError:
                continue  # not renderable: the first view says why
            except Exception:
                log.warning("prerender failed", extra={"sop": sop})
    finally:
        _pending -= len(chosen) - done


async def render_instance(archive: Archive, inst: StoredInstance, frames: list[int],
                          opts: RenderOptions) -> list[bytes]:
    """Frames (1-based) of one instance, from the cache or rendered (then cached)."""
    if not inst.has_pixels:
        raise Unrenderable("the instance has no pixel data")
    count = inst.number_of_frames or 1
    beyond = [f for f in frames if f > count]
    if beyond:
        raise NotFound(f"frame {beyond[0]} does not exist: the instance has {count} frame(s)")
    out: dict[int, bytes] = {}
    for f in frames:
        key = cache_key(inst, f, opts)
        try:
            out[f] = await archive.store.read(key)
        except NotFound:
            pass
        except Exception:  # a cache miss for any reason: render
            log.warning("rendered cache read failed", extra={"key": key})
    missing = [f for f in frames if f not in out]
    if missing and inst.size_bytes <= IN_MEMORY_BYTES:  # read once into memory, parsed once per frame
        source = await archive.store.read(inst.object_key)
        for f in missing:
            out[f] = await _render(archive, inst, source, f, opts)
    elif missing:  # a large object: to a temporary file, only the frames asked for are read
        work = Path(await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix="imaging-render-")))
        try:
            path = work / "instance.dcm"
            await fetch_to(archive.store, inst.object_key, path)
            for f in missing:
                out[f] = await _render(archive, inst, path, f, opts)
        finally:
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(work, True))
    return [out[f] for f in frames]


async def _render(archive: Archive, inst: StoredInstance, source: Path | bytes, frame: int,
                  opts: RenderOptions) -> bytes:
    try:
        data = await anyio.to_thread.run_sync(render_file, source, frame, opts, limiter=_threads())
    except RenderError as exc:
        raise Unrenderable(str(exc)) from exc
    # The cache is written after the answer's bytes exist, beside it: the answer does not wait for (or depend
    # on) the write, which makes the cache entry durable (fsync). Losing one to a crash costs a re-render.
    task = asyncio.create_task(_cache(archive, cache_key(inst, frame, opts), data, opts.media,
                                      inst.sop_instance_uid))
    _writes.add(task)
    task.add_done_callback(_writes.discard)
    return data


async def _cache(archive: Archive, key: str, data: bytes, media: str, sop: str) -> None:
    try:
        await archive.store.put(key, data, content_type=media)
    except Exception:  # the answer does not depend on the cache
        log.warning("rendered cache write failed", extra={"sop": sop})


async def settle_cache_writes() -> None:
    """Wait for the cache writes in flight (tests; a clean shutdown)."""
    while _writes:
        await asyncio.gather(*list(_writes), return_exceptions=True)


async def rendered(archive: Archive, principal: Principal, opts_of: OptionsBuilder, study: str,
                   series: str | None = None, sop: str | None = None, frames: str | None = None) -> Rendered:
    """The rendered resource of a study, series, instance or frames (visibility first: 404)."""
    found = await find_instances(archive, principal, study, series, sop)
    opts = opts_of()
    if sop is not None:
        numbers = parse_frame_list(frames) if frames is not None else [1]
        return Rendered(opts.media, await render_instance(archive, found[0], numbers, opts),
                        multipart=len(numbers) > 1)
    images: list[bytes] = []
    reasons: list[str] = []
    for inst in found:
        if not inst.has_pixels:
            continue
        try:
            images.extend(await render_instance(archive, inst, [1], opts))
        except Unrenderable as exc:
            reasons.append(f"{inst.sop_instance_uid}: {exc}")
    if not images:
        raise Unrenderable("nothing in this " + ("series" if series else "study") + " can be rendered"
                           + (f" ({'; '.join(reasons[:3])})" if reasons else ": no instance has pixel data"))
    return Rendered(opts.media, images, multipart=True)


def representative(found: list[StoredInstance]) -> StoredInstance | None:
    """The middle image instance of the first series that has images."""
    by_series: dict[str, list[StoredInstance]] = {}
    for inst in found:
        if inst.has_pixels:
            by_series.setdefault(inst.series_uid, []).append(inst)
    for members in by_series.values():  # dict order is the repository's series order
        return members[len(members) // 2]
    return None


async def thumbnail(archive: Archive, principal: Principal, opts_of: OptionsBuilder, study: str,
                    series: str | None = None, sop: str | None = None) -> Rendered:
    found = await find_instances(archive, principal, study, series, sop)
    opts = opts_of()
    inst = representative(found)
    if inst is None:
        raise Unrenderable("no image to make a thumbnail of: no instance here has pixel data")
    return Rendered(opts.media, await render_instance(archive, inst, [1], opts), multipart=False)


class OptionsBuilder:
    """Builds the RenderOptions after the visibility check (so a hidden study is 404, never 400/406)."""

    def __init__(self, build: Callable[[], RenderOptions]) -> None:
        self._build = build

    def __call__(self) -> RenderOptions:
        try:
            return self._build()
        except UnsupportedMedia as exc:
            raise NotAcceptable(str(exc)) from exc


async def multipart_body(r: Rendered, boundary: str) -> AsyncIterator[bytes]:
    for i, data in enumerate(r.images):
        yield part_head(boundary, r.media, length=len(data), first=i == 0)
        yield data
    yield closing(boundary)


def multipart_media(r: Rendered) -> tuple[str, str]:
    boundary = new_boundary()
    return boundary, f'multipart/related; type="{r.media}"; boundary={boundary}'


def frame_number(text: str | None) -> int:
    """WADO-URI ``frameNumber`` (1-based; absent: 1)."""
    if text is None or not text.strip():
        return 1
    if not text.strip().isdigit() or int(text) < 1:
        raise BadRequest("frameNumber must be an integer starting at 1")
    return int(text)

