"""``S3Store``: objects in an S3 bucket through the ``minio`` SDK (MinIO in deployments).

The SDK is synchronous; every call runs in a worker thread. An upload from an async iterator is bridged
to the SDK's ``read()`` one chunk at a time and sent as a multipart upload with ``length=-1``: at most one
part (``part_size``) is in memory, whatever the object's size. Downloads stream the HTTP response.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import S3Error

from common.config import PlatformSettings
from common.errors import Invalid, NotFound, Unavailable
from common.storage import (
    CHUNK_SIZE,
    ObjectInfo,
    RangeNotSatisfiable,
    as_chunks,
    normalize_store_prefix,
    validate_bucket,
    validate_key,
    validate_prefix,
    validate_range,
)

DEFAULT_PART_SIZE = 16 * 1024 * 1024  # S3 allows 5 MiB..5 GiB; 16 MiB keeps 10,000 parts above 150 GB
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound"})


class S3Store:
    """An ObjectStore on one S3 bucket (created if missing), optionally under a key prefix."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        *,
        prefix: str = "",
        part_size: int = DEFAULT_PART_SIZE,
        region: str | None = None,
    ):
        self.client = client
        self.bucket = validate_bucket(bucket)
        self.prefix = normalize_store_prefix(prefix)
        self.part_size = part_size
        self.region = region
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: PlatformSettings, *, bucket: str | None = None, prefix: str = "") -> S3Store:
        endpoint, secure = parse_endpoint(settings.s3_endpoint, settings.s3_secure)
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60),
            maxsize=16,
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        client = Minio(
            endpoint,
            access_key=settings.s3_access_key or None,
            secret_key=settings.s3_secret_key or None,
            secure=secure,
            region=settings.s3_region,
            http_client=http,
        )
        return cls(client, bucket or settings.s3_bucket, prefix=prefix, region=settings.s3_region)

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if self._bucket_ready:
                return
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket, location=self.region)
                except S3Error as exc:  # another process made it first
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            self._bucket_ready = True

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            self._ensure_bucket()
            return fn(*args, **kwargs)

        try:
            return await asyncio.to_thread(run)
        except urllib3.exceptions.HTTPError as exc:  # connection refused, timeouts after retries
            raise Unavailable(f"object store unreachable: {type(exc).__name__}") from exc

    async def put(
        self,
        key: str,
        data: AsyncIterator[bytes] | bytes,
        *,
        content_type: str = "application/octet-stream",
        length: int | None = None,
    ) -> ObjectInfo:
        full = self._full(key)
        if isinstance(data, bytes | bytearray | memoryview):
            body = bytes(data)
            if length is not None and length != len(body):
                raise Invalid(f"the body is {len(body)} bytes, not the declared {length}")
            await self._call(
                self.client.put_object, self.bucket, full, io.BytesIO(body), len(body), content_type=content_type
            )
            return await self.stat(key)
        reader = _AsyncIterReader(as_chunks(data), asyncio.get_running_loop())
        try:
            await self._call(
                self.client.put_object,
                self.bucket,
                full,
                reader,
                -1 if length is None else length,
                content_type=content_type,
                part_size=self.part_size,
                num_parallel_uploads=1,
            )
        except (OSError, ValueError) as exc:
            if reader.error is not None:
                raise reader.error from exc
            if length is not None and reader.size != length:
                raise Invalid(f"the body is {reader.size}+ bytes, not the declared {length}") from exc
            raise
        finally:
            await reader.aclose()
        if reader.error is not None:
            raise reader.error
        return await self.stat(key)

    async def get(self, key: str, *, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        validate_range(offset, length)
        full = self._full(key)
        if length == 0:  # the SDK reads length 0 as "to the end"
            await self.stat(key)
            return
        try:
            response = await self._call(self.client.get_object, self.bucket, full, offset=offset, length=length or 0)
        except S3Error as exc:
            raise _translate(exc, key) from exc
        try:
            stream: Iterator[bytes] = response.stream(CHUNK_SIZE)
            while True:
                chunk = await asyncio.to_thread(next, stream, b"")
                if not chunk:
                    break
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def read(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in self.get(key)])

    async def stat(self, key: str) -> ObjectInfo:
        try:
            obj = await self._call(self.client.stat_object, self.bucket, self._full(key))
        except S3Error as exc:
            raise _translate(exc, key) from exc
        return ObjectInfo(
            key,
            int(obj.size or 0),
            obj.content_type or "",
            (obj.etag or "").strip('"'),
            obj.last_modified or datetime.now(UTC),
        )

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except NotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        await self._call(self.client.remove_object, self.bucket, self._full(key))

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        wanted = self.prefix + validate_prefix(prefix)
        pages = await self._call(self.client.list_objects, self.bucket, prefix=wanted or None, recursive=True)
        while True:
            batch = await asyncio.to_thread(_take, pages, 500)
            if not batch:
                return
            for obj in batch:
                if obj.is_dir:
                    continue
                yield ObjectInfo(
                    obj.object_name[len(self.prefix) :],
                    int(obj.size or 0),
                    "",
                    (obj.etag or "").strip('"'),
                    obj.last_modified or datetime.now(UTC),
                )

    async def presigned_get(self, key: str, *, expires_seconds: int = 900) -> str:
        if expires_seconds <= 0:
            raise Invalid("expires_seconds must be positive")
        url: str = await self._call(
            self.client.presigned_get_object, self.bucket, self._full(key), expires=timedelta(seconds=expires_seconds)
        )
        return url

    async def check(self) -> None:
        self._bucket_ready = False  # probe the server every time, not a cached answer
        try:
            await self._call(lambda: None)
        except (S3Error, OSError) as exc:
            raise Unavailable(f"object store unreachable: {type(exc).__name__}") from exc


def parse_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """``http://host:9000`` or ``host:9000`` → (``host:9000``, secure)."""
    if not endpoint:
        raise RuntimeError("S3_ENDPOINT is not set (OBJECT_STORE=s3)")
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        return parts.netloc, parts.scheme == "https"
    return endpoint, secure


def _translate(exc: S3Error, key: str) -> Exception:
    if exc.code in _MISSING_CODES:
        return NotFound(f"no object {key!r}")
    if exc.code == "InvalidRange":
        return RangeNotSatisfiable("the requested range is beyond the end of the object")
    return exc


def _take(iterator: Iterator[Any], n: int) -> list[Any]:
    out = []
    for item in iterator:
        out.append(item)
        if len(out) >= n:
            break
    return out


class _AsyncIterReader(io.RawIOBase):
    """A blocking ``read()`` for the SDK's thread, fed from an async iterator on the event loop."""

    def __init__(self, source: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop):
        super().__init__()
        self._source = source
        self._loop = loop
        self._pending = b""
        self._done = False
        self.size = 0
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = size if size is not None and size >= 0 else 1 << 62
        parts: list[bytes] = []
        have = 0
        while have < want:
            if not self._pending:
                if self._done:
                    break
                self._pending = self._next_chunk()
                if not self._pending:
                    break
            take = self._pending[: want - have]
            self._pending = self._pending[len(take) :]
            parts.append(take)
            have += len(take)
        return b"".join(parts)

    def _next_chunk(self) -> bytes:
        future: Future[bytes] = asyncio.run_coroutine_threadsafe(self._anext(), self._loop)
        try:
            chunk = future.result()
        except BaseException as exc:  # the caller's iterator failed: stop the upload, re-raise later
            self.error = exc
            self._done = True
            raise OSError("the upload source failed") from exc
        if not chunk:
            self._done = True
        self.size += len(chunk)
        return chunk

    async def _anext(self) -> bytes:
        try:
            return await anext(self._source)
        except StopAsyncIteration:
            return b""

    async def aclose(self) -> None:
        close = getattr(self._source, "aclose", None)
        if close is not None:
            await close()
