"""Object storage: one protocol, two stores.

``S3Store`` (common/storage_s3.py) speaks S3 through the ``minio`` SDK (deployments, MinIO); ``FileStore``
(common/storage_file.py) keeps objects under a local directory (the embedded default). Both stream:
nothing large is held in memory. ``open_store(settings)`` picks one by ``OBJECT_STORE``.

Keys are ``/``-separated relative names (``imaging/<study>/<instance>.dcm``). Both stores refuse the same
keys (absolute, ``.``/``..`` or empty segments, NUL and control characters, over 1024 bytes) so that code
tested against one behaves the same against the other. A missing key raises ``common.errors.NotFound``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from common.errors import AppError, Invalid

if TYPE_CHECKING:
    from fastapi import FastAPI

    from common.config import PlatformSettings

MAX_KEY_BYTES = 1024
CHUNK_SIZE = 1024 * 1024  # what get() yields at most per chunk
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object. ``content_type`` may be empty in listings (S3 lists none)."""

    key: str
    size: int
    content_type: str
    etag: str
    modified: datetime


class RangeNotSatisfiable(AppError):
    """The requested byte range starts at or beyond the end of the object."""

    status, code = 416, "range_not_satisfiable"


@runtime_checkable
class ObjectStore(Protocol):
    async def put(
        self,
        key: str,
        data: AsyncIterator[bytes] | bytes,
        *,
        content_type: str = "application/octet-stream",
        length: int | None = None,
    ) -> ObjectInfo:
        """Store ``data`` (bytes or an async iterator of chunks, streamed) under ``key``, replacing any."""
        ...

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream the object (or ``length`` bytes from ``offset``); NotFound on the first iteration."""
        ...

    async def read(self, key: str) -> bytes:
        """The whole object in memory: for small objects only."""
        ...

    async def stat(self, key: str) -> ObjectInfo: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        ...

    def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (a plain string prefix), in key order."""
        ...

    async def presigned_get(self, key: str, *, expires_seconds: int = 900) -> str:
        """A URL that lets its bearer GET the object until it expires, without a token."""
        ...

    async def check(self) -> None:
        """Raise if the store cannot serve (readiness)."""
        ...


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise Invalid."""
    if not isinstance(key, str) or not key:
        raise Invalid("object key must be a non-empty string")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise Invalid(f"object key longer than {MAX_KEY_BYTES} bytes")
    if _CONTROL.search(key):
        raise Invalid("object key contains a control character")
    if key.startswith("/") or "\\" in key:
        raise Invalid("object key must be relative and use '/' separators")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise Invalid("object key has an empty, '.' or '..' segment")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, or the start of some valid key (it may end mid-segment or in '/')."""
    if not prefix:
        return ""
    if _CONTROL.search(prefix) or prefix.startswith("/") or "\\" in prefix:
        raise Invalid("object key prefix must be relative, without control characters")
    if any(part in ("", ".", "..") for part in prefix.split("/")[:-1]):
        raise Invalid("object key prefix has an empty, '.' or '..' segment")
    if len(prefix.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise Invalid(f"object key prefix longer than {MAX_KEY_BYTES} bytes")
    return prefix


def validate_bucket(bucket: str) -> str:
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise Invalid(f"invalid bucket name: {bucket!r}")
    return bucket


def validate_range(offset: int, length: int | None) -> None:
    if offset < 0 or (length is not None and length < 0):
        raise Invalid("byte range offset and length must not be negative")


def normalize_store_prefix(prefix: str) -> str:
    """A store-wide key prefix such as ``cold/``: validated, with one trailing slash."""
    prefix = prefix.strip("/")
    return validate_key(prefix) + "/" if prefix else ""


async def as_chunks(data: AsyncIterator[bytes] | bytes) -> AsyncIterator[bytes]:
    """Accept bytes or an async iterator alike."""
    if isinstance(data, bytes | bytearray | memoryview):
        if data:
            yield bytes(data)
        return
    async for chunk in data:
        if chunk:
            yield bytes(chunk)


def open_store(settings: PlatformSettings, *, bucket: str | None = None, prefix: str = "") -> ObjectStore:
    """The store ``settings.object_store`` names, on ``bucket`` (default ``settings.s3_bucket``).

    A service keeps its objects under its own ``prefix``; the cold tier opens a second bucket.
    """
    name = validate_bucket(bucket or settings.s3_bucket)
    if settings.object_store == "s3":
        from common.storage_s3 import S3Store

        return S3Store.from_settings(settings, bucket=name, prefix=prefix)
    from common.storage_file import FileStore

    return FileStore(settings.objects_root, bucket=name, prefix=prefix, secret=settings.presign_secret)


def install_presigned_route(app: FastAPI, store: ObjectStore | None = None) -> None:
    """Serve the FileStore's presigned URLs (``/_objects/...``) from ``app``.

    Without ``store`` the route uses ``app.state.store`` at request time (set in the app's lifespan).
    """
    from common.storage_file import install_presigned_route as install

    install(app, store)


__all__ = [
    "CHUNK_SIZE",
    "ObjectInfo",
    "ObjectStore",
    "RangeNotSatisfiable",
    "as_chunks",
    "install_presigned_route",
    "open_store",
    "validate_key",
    "validate_prefix",
]
