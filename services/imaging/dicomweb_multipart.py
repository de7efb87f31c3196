"""multipart/related (RFC 2387) for DICOMweb: reading a STOW-RS body part by part, writing retrieve answers.

``spool_parts`` reads the request body as it arrives and writes each part to its own temporary file
(hashing it on the way); it yields a part once it is complete, so the caller stores one instance before
the next is read. Memory holds one network chunk plus a boundary's length, whatever the body's size.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

MAX_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True)
class MediaType:
    """A parsed Content-Type or Accept entry: ``type/subtype; name=value...`` (names lower-cased)."""

    type: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def q(self) -> float:
        try:
            return float(self.params.get("q", "1"))
        except ValueError:
            return 0.0


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_media_type(text: str) -> MediaType:
    pieces = _split_outside_quotes(text, ";")
    params = {}
    for piece in pieces[1:]:
        name, _, value = piece.partition("=")
        if name.strip():
            params[name.strip().lower()] = value.strip().strip('"')
    return MediaType(pieces[0].strip().lower(), params)


def parse_accept(header: str | None) -> list[MediaType]:
    """Accept entries, best first (stable for equal q)."""
    if not header or not header.strip():
        return []
    entries = [parse_media_type(e) for e in _split_outside_quotes(header, ",") if e.strip()]
    return sorted((e for e in entries if e.q > 0), key=lambda e: -e.q)


@dataclass
class SpooledPart:
    index: int             # 1-based position in the request
    content_type: MediaType
    path: Path
    size: int
    sha256: str
    complete: bool = True  # False: the body ended inside this part


def stow_boundary(content_type: str | None) -> bytes:
    """The boundary of a STOW-RS request whose parts are application/dicom; 415/400 otherwise."""
    mt = parse_media_type(content_type or "")
    if mt.type != "multipart/related":
        raise UnsupportedMediaType('send instances as multipart/related; type="application/dicom"')
    root = mt.params.get("type", "application/dicom").lower()
    if root != "application/dicom":
        raise UnsupportedMediaType(f'only type="application/dicom" is supported for STOW-RS (got "{root}")')
    boundary = mt.params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise BadRequest("the multipart/related Content-Type has no usable boundary parameter")
    return boundary.encode("latin-1")


class _Body:
    def __init__(self, chunks: AsyncIterator[bytes], limit: int):
        self.chunks = chunks.__aiter__()
        self.buf = bytearray()
        self.limit = limit
        self.seen = 0
        self.eof = False

    async def more(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = await self.chunks.__anext__()
        except StopAsyncIteration:
            self.eof = True
            return False
        self.seen += len(chunk)
        if self.seen > self.limit:
            raise PayloadTooLarge(f"the request body is larger than {self.limit} bytes")
        self.buf += chunk
        return True

    async def need(self, n: int) -> bool:
        while len(self.buf) < n:
            if not await self.more():
                return False
        return True


async def spool_parts(chunks: AsyncIterator[bytes], boundary: bytes, directory: Path, *, max_body: int,
                      max_part: int) -> AsyncIterator[SpooledPart]:
    """Yield each part of a multipart/related body, spooled to a file in ``directory``."""
    body = _Body(chunks, max_body)
    delimiter = b"--" + boundary
    # The first delimiter: at the very start, or after a CRLF (a preamble may precede it).
    while True:
        idx = body.buf.find(delimiter)
        if idx >= 0 and (idx == 0 or body.buf[idx - 2:idx] == b"\r\n"):
            del body.buf[:idx + len(delimiter)]
            break
        if len(body.buf) > MAX_HEADER_BYTES:
            del body.buf[:-len(delimiter) - 2]
        if not await body.more():
            raise BadRequest("the request body holds no multipart boundary")
    index = 0
    separator = b"\r\n" + delimiter
    while True:
        if not await body.need(2) or body.buf[:2] == b"--":
            return  # the close delimiter (or a body that ends right after a delimiter)
        while bytes(body.buf[:1]) in (b" ", b"\t"):  # transport padding
            del body.buf[:1]
            await body.need(2)
        if body.buf[:2] != b"\r\n":
            raise BadRequest("malformed multipart body: a boundary line is not followed by CRLF")
        del body.buf[:2]
        index += 1
        headers = await _headers(body)
        part = SpooledPart(index, parse_media_type(headers.get("content-type", "application/dicom")),
                           directory / f"part-{index}.dcm", 0, "")
        ended = await _spool_body(body, separator, part, max_part)
        yield part
        await asyncio.to_thread(part.path.unlink, True)
        if not ended:
            return


async def _headers(body: _Body) -> dict[str, str]:
    while True:
        if body.buf.startswith(b"\r\n"):  # no headers at all
            del body.buf[:2]
            return {}
        end = body.buf.find(b"\r\n\r\n")
        if end >= 0:
            block = bytes(body.buf[:end]).decode("latin-1")
            del body.buf[:end + 4]
            headers = {}
            for line in block.split("\r\n"):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            return headers
        if len(body.buf) > MAX_HEADER_BYTES:
            raise BadRequest("malformed multipart body: part headers too long")
        if not await body.more():
            raise BadRequest("malformed multipart body: it ends inside part headers")


async def _spool_body(body: _Body, separator: bytes, part: SpooledPart, max_part: int) -> bool:
    """Write the part's body to its file; True when its closing delimiter was found."""
    digest = hashlib.sha256()
    fh = await asyncio.to_thread(part.path.open, "wb")
    keep = len(separator) - 1
    try:
        while True:
            idx = body.buf.find(separator)
            if idx >= 0:
                data, rest = bytes(body.buf[:idx]), body.buf[idx + len(separator):]
                body.buf = rest
            else:
                cut = max(0, len(body.buf) - keep)
                data = bytes(body.buf[:cut])
                del body.buf[:cut]
            if data:
                part.size += len(data)
                if part.size > max_part:
                    raise PayloadTooLarge(f"part {part.index} is larger than {max_part} bytes")
                digest.update(data)
                await asyncio.to_thread(fh.write, data)
            if idx >= 0:
                return True
            if not await body.more():
                tail = bytes(body.buf)
                body.buf.clear()
                if tail:
                    part.size += len(tail)
                    digest.update(tail)
                    await asyncio.to_thread(fh.write, tail)
                part.complete = False
                return False
    finally:
        part.sha256 = digest.hexdigest()
        await asyncio.to_thread(fh.close)


def new_boundary() -> str:
    return uuid.uuid4().hex


def part_head(boundary: str, content_type: str, *, location: str | None = None, length: int | None = None,
              first: bool = False) -> bytes:
    """The delimiter line and headers that open one part of a multipart/related answer."""
    lines = [("" if first else "\r\n") + f"--{boundary}", f"Content-Type: {content_type}"]
    if location:
        lines.append(f"Content-Location: {location}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def closing(boundary: str, *, empty: bool = False) -> bytes:
    return (f"--{boundary}--\r\n" if empty else f"\r\n--{boundary}--\r\n").encode("latin-1")
