"""Reading a STOW-RS body into batches of instances: parts up to ``memory_part`` bytes are held in memory,
larger ones are spooled to a temporary file as they arrive (dicomweb_multipart.spool_parts does the same for
every part). ``stow_batches`` yields a batch when it holds ``batch_parts`` parts or ``batch_bytes`` bytes of
memory, so a request holds at most about ``batch_bytes + memory_part`` bytes whatever its size.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from common.errors import BadRequest, PayloadTooLarge
from services.imaging.dicomweb_multipart import MediaType, _Body, _headers, parse_media_type


@dataclass
class StowPart:
    index: int                  # 1-based position in the request
    content_type: MediaType
    size: int = 0
    data: bytes | None = None   # held in memory...
    path: Path | None = None    # ...or spooled to a file
    sha256: str | None = None   # known for spooled parts; in-memory parts are hashed by the store
    complete: bool = True       # False: the body ended inside this part


async def stow_batches(chunks: AsyncIterator[bytes], boundary: bytes, directory: Path, *, max_body: int,
                       max_part: int, memory_part: int, batch_parts: int,
                       batch_bytes: int) -> AsyncIterator[list[StowPart]]:
    batch: list[StowPart] = []
    held = 0
    async for part in _parts(chunks, boundary, directory, max_body, max_part, memory_part):
        batch.append(part)
        held += part.size if part.data is not None else 0
        if len(batch) >= batch_parts or held >= batch_bytes:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


async def _parts(chunks: AsyncIterator[bytes], boundary: bytes, directory: Path, max_body: int, max_part: int,
                 memory_part: int) -> AsyncIterator[StowPart]:
    body = _Body(chunks, max_body)
    delimiter = b"--" + boundary
    while True:  # the first delimiter: at the very start, or after a CRLF (a preamble may precede it)
        idx = body.buf.find(delimiter)
        if idx >= 0 and (idx == 0 or body.buf[idx - 2:idx] == b"\r\n"):
            del body.buf[:idx + len(delimiter)]
            break
        if len(body.buf) > 16 * 1024:
            del body.buf[:-len(delimiter) - 2]
        if not await body.more():
            raise BadRequest("the request body holds no multipart boundary")
    index = 0
    separator = b"\r\n" + delimiter
    while True:
        if not await body.need(2) or body.buf[:2] == b"--":
            return
        while bytes(body.buf[:1]) in (b" ", b"\t"):  # transport padding
            del body.buf[:1]
            await body.need(2)
        if body.buf[:2] != b"\r\n":
            raise BadRequest("malformed multipart body: a boundary line is not followed by CRLF")
        del body.buf[:2]
        index += 1
        headers = await _headers(body)
        part = StowPart(index, parse_media_type(headers.get("content-type", "application/dicom")))
        ended = await _read_body(body, separator, part, max_part, memory_part, directory)
        yield part
        if not ended:
            return


async def _read_body(body: _Body, separator: bytes, part: StowPart, max_part: int, memory_part: int,
                     directory: Path) -> bool:
    """The part's bytes into memory, or into a file once past ``memory_part``; True when its closing
    delimiter was found."""
    held: list[bytes] = []
    fh: IO[bytes] | None = None
    digest = hashlib.sha256()
    keep = len(separator) - 1

    async def take(data: bytes) -> None:
        nonlocal fh, held
        if not data:
            return
        part.size += len(data)
        if part.size > max_part:
            raise PayloadTooLarge(f"part {part.index} is larger than {max_part} bytes")
        if fh is None and part.size > memory_part:
            part.path = directory / f"part-{part.index}.dcm"
            fh = await asyncio.to_thread(part.path.open, "wb")
            for block in held:
                digest.update(block)
            await asyncio.to_thread(fh.writelines, held)
            held = []
        if fh is None:
            held.append(data)
        else:
            digest.update(data)
            await asyncio.to_thread(fh.write, data)

    try:
        while True:
            idx = body.buf.find(separator)
            cut = idx if idx >= 0 else max(0, len(body.buf) - keep)
            with memoryview(body.buf) as view:  # one copy out of the buffer (a slice, then bytes(), is two)
                data = bytes(view[:cut])
            del body.buf[:cut + len(separator) if idx >= 0 else cut]
            await take(data)
            if idx >= 0:
                return True
            if not await body.more():
                tail = bytes(body.buf)
                body.buf.clear()
                await take(tail)
                part.complete = False
                return False
    finally:
        if fh is not None:
            await asyncio.to_thread(fh.close)
            part.sha256 = digest.hexdigest()
        else:
            part.data = b"".join(held)
