"""``FileStore``: objects under a local directory, the embedded default.

Layout under ``<objects root>/<bucket>/``: ``data/<key>`` holds the bytes, ``meta/<key>.json`` the content
type and sha-256 etag, ``tmp/`` the uploads in flight. A write goes to a temp file, is fsynced and moved in
with ``os.replace``, so a reader sees the old object or the new one, never half of one. The sidecar names
the inode of the data file it describes: if a crash lands between the two renames, the mismatch is seen and
a weak etag is given instead of a wrong one. The two renames run under a per-key ``flock`` (shared by stat),
so concurrent writers on one host always leave data and sidecar of the same version.

Presigned URLs are ``/_objects/<bucket>/<key>?exp=<unix>&sig=<hmac>``, signed with ``PRESIGN_SECRET`` and
served by :func:`install_presigned_route` (every app built by create_service_app has it).
"""

from __future__ import annotations

import asyncio
import base64
import errno
import fcntl
import hashlib
import hmac
import json
import os
import stat
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from common.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from common.storage import (
    CHUNK_SIZE,
    ObjectInfo,
    ObjectStore,
    RangeNotSatisfiable,
    as_chunks,
    normalize_store_prefix,
    validate_bucket,
    validate_key,
    validate_prefix,
    validate_range,
)

_WRITE_BUFFER = 1024 * 1024
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


class FileStore:
    """An ObjectStore on a local directory (one bucket of it, optionally under a key prefix)."""

    def __init__(self, root: Path, *, bucket: str = "telehealth", prefix: str = "", secret: str):
        self.base_root = Path(root)
        self.bucket = validate_bucket(bucket)
        self.prefix = normalize_store_prefix(prefix)
        self.root = self.base_root / self.bucket
        self._data = self.root / "data"
        self._meta = self.root / "meta"
        self._tmp = self.root / "tmp"
        self._secret = secret.encode()
        self._tmp_ready = self._locks_ready = False  # made once per instance (check() and put make them)
        self._data_real: Path | None = None

    # -- paths ---------------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _data_path(self, full: str) -> Path:
        path = self._data.joinpath(*full.split("/"))
        # validate_key already forbids '..' and absolute keys; this is the second wall. (The root's own
        # resolution is kept: if the root were swapped for a link later, keys would fail closed.)
        if self._data_real is None:
            self._data_real = self._data.resolve()
        if not path.resolve().is_relative_to(self._data_real):
            raise Invalid("object key escapes the store")
        return path

    def _meta_path(self, full: str) -> Path:
        return self._meta.joinpath(*full.split("/")).with_name(full.rsplit("/", 1)[-1] + ".json")

    # -- writing -------------------------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: AsyncIterator[bytes] | bytes,
        *,
        content_type: str = "application/octet-stream",
        length: int | None = None,
    ) -> ObjectInfo:
        full = self._full(key)
        path, meta = self._data_path(full), self._meta_path(full)
        if isinstance(data, bytes | bytearray | memoryview):  # all in memory: one worker-thread call
            body = bytes(data)
            if length is not None and len(body) > length:
                raise Invalid(f"the body is longer than the declared {length} bytes")
            if length is not None and len(body) != length:
                raise Invalid(f"the body is {len(body)} bytes, not the declared {length}")
            return await asyncio.to_thread(self._put_bytes, key, body, path, meta, content_type)
        tmp = await asyncio.to_thread(self._new_tmp)
        meta_tmp = tmp.with_suffix(".json")
        digest = hashlib.sha256()
        size = 0
        fh = await asyncio.to_thread(open, tmp, "xb")
        try:
            buffer = bytearray()
            async for chunk in as_chunks(data):
                size += len(chunk)
                if length is not None and size > length:
                    raise Invalid(f"the body is longer than the declared {length} bytes")
                buffer += chunk
                if len(buffer) >= _WRITE_BUFFER:
                    await asyncio.to_thread(_write, fh, digest, bytes(buffer))
                    buffer.clear()
            await asyncio.to_thread(_write, fh, digest, bytes(buffer))
            if length is not None and size != length:
                raise Invalid(f"the body is {size} bytes, not the declared {length}")
            etag = digest.hexdigest()
            return await asyncio.to_thread(self._commit, key, fh, tmp, meta_tmp, path, meta, content_type, etag)
        except BaseException:
            await asyncio.to_thread(_discard, fh, tmp, meta_tmp)
            raise

    def _new_tmp(self) -> Path:
        if not self._tmp_ready:
            self._tmp.mkdir(parents=True, exist_ok=True)
            self._tmp_ready = True
        return self._tmp / uuid.uuid4().hex

    def _put_bytes(self, key: str, body: bytes, path: Path, meta: Path, content_type: str) -> ObjectInfo:
        tmp = self._new_tmp()
        meta_tmp = tmp.with_suffix(".json")
        etag = hashlib.sha256(body).hexdigest()
        fh = open(tmp, "xb")  # closed by _commit or _discard
        try:
            fh.write(body)
            return self._commit(key, fh, tmp, meta_tmp, path, meta, content_type, etag)
        except BaseException:
            _discard(fh, tmp, meta_tmp)
            raise

    def _commit(self, key: str, fh: Any, tmp: Path, meta_tmp: Path, path: Path, meta: Path, content_type: str,
                etag: str) -> ObjectInfo:
        """Make the data durable (fsync), then move sidecar and data in and fsync the data's directory.

        The sidecar is not fsynced: after a crash it may be missing, empty or an older one, and stat() sees
        that it does not describe the data file (inode and size) and answers a weak etag. The data itself
        and its directory entry are durable when this returns.
        """
        fh.flush()
        os.fsync(fh.fileno())
        st = os.fstat(fh.fileno())
        fh.close()
        sidecar = {"ino": st.st_ino, "size": st.st_size, "etag": etag, "content_type": content_type}
        with open(meta_tmp, "wb") as mf:
            mf.write(json.dumps(sidecar).encode())
        for attempt in range(3):  # a concurrent delete may prune the parent we just made
            try:
                if attempt:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    meta.parent.mkdir(parents=True, exist_ok=True)
                with self._lock(path, fcntl.LOCK_EX):  # the two renames as one step for stat()
                    os.replace(meta_tmp, meta)
                    os.replace(tmp, path)
                break
            except FileNotFoundError:  # a parent directory is missing: make them (again), then retry
                if attempt == 2:
                    raise
            except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
                raise Conflict("object key collides with a key prefix of another object") from exc
        _fsync_dir(path.parent)
        return ObjectInfo(key, st.st_size, content_type, etag, datetime.fromtimestamp(st.st_mtime, tz=UTC))

    async def delete(self, key: str) -> None:
        full = self._full(key)
        await asyncio.to_thread(self._delete, self._data_path(full), self._meta_path(full))

    def _delete(self, path: Path, meta: Path) -> None:
        for p, stop in ((path, self._data), (meta, self._meta)):
            try:
                if p.is_file():
                    p.unlink()
            except FileNotFoundError:
                pass
            _prune(p.parent, stop)

    # -- reading -------------------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo:
        full = self._full(key)
        return await asyncio.to_thread(self._stat, key, self._data_path(full), self._meta_path(full))

    @contextmanager
    def _lock(self, path: Path, mode: int) -> Iterator[None]:
        """A host-wide lock for one key (striped over 64 lock files): writers exclusive, stat shared."""
        stripe = hashlib.sha256(str(path).encode()).hexdigest()[:2]
        locks = self.root / "locks"
        if not self._locks_ready:
            locks.mkdir(parents=True, exist_ok=True)
            self._locks_ready = True
        fd = os.open(locks / f"{int(stripe, 16) % 64:02d}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _stat(self, key: str, path: Path, meta: Path) -> ObjectInfo:
        sidecar: dict[str, Any] = {}
        with self._lock(path, fcntl.LOCK_SH):
            try:
                st = path.stat()
            except _MISSING as exc:
                raise NotFound(f"no object {key!r}") from exc
            if not stat.S_ISREG(st.st_mode):
                raise NotFound(f"no object {key!r}")
            try:
                sidecar = json.loads(meta.read_bytes())
            except (*_MISSING, ValueError):
                pass
        modified = datetime.fromtimestamp(st.st_mtime, tz=UTC)
        if sidecar.get("ino") == st.st_ino and sidecar.get("size") == st.st_size:
            return ObjectInfo(key, st.st_size, str(sidecar["content_type"]), str(sidecar["etag"]), modified)
        # Sidecar missing or describing another file (a crash between the renames): weak etag.
        return ObjectInfo(
            key, st.st_size, "application/octet-stream", f"W/{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}", modified
        )

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except NotFound:
            return False
        return True

    async def get(self, key: str, *, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        validate_range(offset, length)
        path = self._data_path(self._full(key))
        # Opening and the first chunk in one worker-thread call: an object up to CHUNK_SIZE costs one.
        fh, first, remaining = await asyncio.to_thread(_open_first, path, key, offset, length)
        try:
            if first:
                yield first
            while fh is not None and remaining > 0:
                chunk = await asyncio.to_thread(fh.read, min(CHUNK_SIZE, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        finally:
            if fh is not None:
                fh.close()

    async def read(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in self.get(key)])

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        wanted = self.prefix + validate_prefix(prefix)
        start_dir = wanted.rsplit("/", 1)[0] if "/" in wanted else ""
        start = self._data.joinpath(*start_dir.split("/")) if start_dir else self._data
        walker = _walk(start, start_dir, wanted)
        while True:
            batch = await asyncio.to_thread(lambda: list(islice(walker, 256)))
            if not batch:
                return
            for full in batch:
                try:
                    yield await asyncio.to_thread(
                        self._stat, full[len(self.prefix) :], self._data_path(full), self._meta_path(full)
                    )
                except NotFound:  # deleted while listing
                    continue

    # -- presigning and health -----------------------------------------------------------------

    async def presigned_get(self, key: str, *, expires_seconds: int = 900) -> str:
        if expires_seconds <= 0:
            raise Invalid("expires_seconds must be positive")
        full = self._full(key)
        exp = int(time.time()) + expires_seconds
        sig = sign(self._secret, self.bucket, full, exp)
        return f"/_objects/{self.bucket}/{quote(full, safe='/')}?exp={exp}&sig={sig}"

    def verify(self, full_key: str, exp: str, sig: str) -> bool:
        if not exp.isdigit() or int(exp) < time.time():
            return False
        return hmac.compare_digest(sign(self._secret, self.bucket, full_key, int(exp)), sig)

    async def check(self) -> None:
        def probe() -> None:
            for d in (self._data, self._meta, self._tmp):
                d.mkdir(parents=True, exist_ok=True)
                if not os.access(d, os.W_OK):
                    raise Unavailable(f"object store directory {d} is not writable")

        await asyncio.to_thread(probe)


def sign(secret: bytes, bucket: str, full_key: str, exp: int) -> str:
    mac = hmac.new(secret, f"{bucket}/{full_key}\n{exp}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _write(fh: Any, digest: Any, data: bytes) -> None:
    if data:
        digest.update(data)
        fh.write(data)


def _open_first(path: Path, key: str, offset: int, length: int | None) -> tuple[Any, bytes, int]:
    """Open an object, read its first chunk; the file (None when the chunk was all of it), the chunk and
    how many bytes are still to read."""
    try:
        fh = open(path, "rb")  # closed here, or by get()
    except _MISSING as exc:
        raise NotFound(f"no object {key!r}") from exc
    try:
        size = os.fstat(fh.fileno()).st_size
        if offset > 0 and offset >= size:
            raise RangeNotSatisfiable(f"offset {offset} is beyond the object's {size} bytes")
        remaining = size - offset if length is None else min(length, size - offset)
        if offset:
            fh.seek(offset)
        first = fh.read(min(CHUNK_SIZE, remaining)) if remaining > 0 else b""
        remaining -= len(first)
        if remaining <= 0 or not first:
            fh.close()
            return None, first, 0
        return fh, first, remaining
    except BaseException:
        fh.close()
        raise


def _discard(fh: Any, *paths: Path) -> None:
    fh.close()
    for p in paths:
        p.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(directory: Path, stop: Path) -> None:
    """Remove empty directories from ``directory`` up to (not including) ``stop``."""
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                return
            raise
        directory = directory.parent


def _walk(directory: Path, rel: str, wanted: str) -> Iterator[str]:
    """Full keys under ``directory`` that start with ``wanted``, in lexicographic key order."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    # Sorting a directory as "name/" puts "a/b" after "a-c" and before "a0", as S3 orders full keys.
    named = sorted(((e.name + "/" if e.is_dir(follow_symlinks=False) else e.name), e) for e in entries)
    for name, entry in named:
        key = f"{rel}/{name}" if rel else name
        if name.endswith("/"):
            if key.startswith(wanted) or wanted.startswith(key):
                yield from _walk(Path(entry.path), key[:-1], wanted)
        elif key.startswith(wanted) and entry.is_file(follow_symlinks=False):
            yield key


# -- the presigned route -------------------------------------------------------------------------


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=a-b`` range as (offset, length); None means the whole object."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    if first == "" and last.isdigit():
        n = min(int(last), size)
        return (size - n, n) if n else None
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    if start >= size:
        raise RangeNotSatisfiable(
            f"range starts beyond the object's {size} bytes", headers={"Content-Range": f"bytes */{size}"}
        )
    end = min(int(last), size - 1) if last else size - 1
    return (start, end - start + 1) if end >= start else None


def install_presigned_route(app: FastAPI, store: ObjectStore | None = None) -> None:
    """Serve ``/_objects/<bucket>/<key>?exp=..&sig=..`` for the FileStore of ``app`` (or ``store``)."""

    @app.api_route("/_objects/{bucket}/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def presigned_object(request: Request, bucket: str, key: str) -> Response:
        base = store if store is not None else getattr(request.app.state, "store", None)
        if not isinstance(base, FileStore):
            raise NotFound("no such resource")
        target = FileStore(base.base_root, bucket=validate_bucket(bucket), secret=base._secret.decode())
        if not target.verify(key, request.query_params.get("exp", ""), request.query_params.get("sig", "")):
            raise Forbidden("the link is invalid or has expired")
        info = await target.stat(key)
        headers = {
            "ETag": f'"{info.etag}"',
            "Accept-Ranges": "bytes",
            "Cache-Control": "private, no-store",
            "Last-Modified": info.modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        }
        wanted = _parse_range(request.headers.get("range"), info.size)
        status, offset, length = 200, 0, info.size
        if wanted is not None:
            status, (offset, length) = 206, wanted
            headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{info.size}"
        headers["Content-Length"] = str(length)
        media = info.content_type or "application/octet-stream"
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=media)
        return StreamingResponse(
            target.get(key, offset=offset, length=length), status_code=status, headers=headers, media_type=media
        )
