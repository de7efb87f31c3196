"""FileStore specifics: the presigned route's checks, atomic layout, crash tolerance, path safety."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from common.errors import Conflict, Invalid
from common.storage_file import FileStore, sign
from tests.fixtures.s3 import PresignServer


@pytest.fixture
def served(file_store: FileStore, file_presign_server: PresignServer) -> str:
    file_presign_server.app.state.store = file_store
    return file_presign_server.url


async def test_presigned_link_expires(file_store: FileStore, served: str) -> None:
    await file_store.put("x/y", b"secret scan")
    # exp is whole seconds (int(now) + 3): the link lives 2-3 s, so a busy machine still gets its first GET in
    url = await file_store.presigned_get("x/y", expires_seconds=3)
    async with httpx.AsyncClient(base_url=served, timeout=5) as client:
        assert (await client.get(url)).status_code == 200
        await asyncio.sleep(3.1)
        r = await client.get(url)
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"


async def test_presigned_link_cannot_be_altered(file_store: FileStore, served: str) -> None:
    await file_store.put("mine/a", b"a")
    await file_store.put("mine/b", b"b")
    url = await file_store.presigned_get("mine/a", expires_seconds=60)
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    async with httpx.AsyncClient(base_url=served, timeout=5) as client:
        other_key = await client.get(parts.path.replace("mine/a", "mine/b"), params=q)
        longer = await client.get(parts.path, params={**q, "exp": str(int(q["exp"]) + 3600)})
        bad_sig = await client.get(parts.path, params={**q, "sig": q["sig"][:-2] + "AA"})
        no_sig = await client.get(parts.path)
        other_bucket = await client.get(parts.path.replace("/telehealth/", "/coldtier/"), params=q)
    assert [r.status_code for r in (other_key, longer, bad_sig, no_sig, other_bucket)] == [403] * 5


async def test_presigned_missing_object_is_404(file_store: FileStore, served: str) -> None:
    url = await file_store.presigned_get("gone/soon", expires_seconds=60)
    async with httpx.AsyncClient(base_url=served, timeout=5) as client:
        r = await client.get(url)
    assert r.status_code == 404


async def test_presigned_head_and_ranges(file_store: FileStore, served: str) -> None:
    body = bytes(range(200))
    info = await file_store.put("h/obj", body, content_type="image/png")
    url = await file_store.presigned_get("h/obj", expires_seconds=60)
    async with httpx.AsyncClient(base_url=served, timeout=5) as client:
        head = await client.head(url)
        suffix = await client.get(url, headers={"Range": "bytes=-10"})
        open_end = await client.get(url, headers={"Range": "bytes=190-"})
        beyond = await client.get(url, headers={"Range": "bytes=500-"})
    assert head.status_code == 200
    assert head.headers["content-length"] == "200"
    assert head.headers["etag"] == f'"{info.etag}"'
    assert head.content == b""
    assert (suffix.status_code, suffix.content) == (206, body[-10:])
    assert suffix.headers["content-range"] == "bytes 190-199/200"
    assert (open_end.status_code, open_end.content) == (206, body[190:])
    assert beyond.status_code == 416


async def test_presign_signature_covers_bucket_key_and_expiry() -> None:
    s = sign(b"k", "b", "a/key", 100)
    assert s != sign(b"k", "b", "a/key", 101)
    assert s != sign(b"k", "c", "a/key", 100)
    assert s != sign(b"k", "b", "a/kez", 100)
    assert s != sign(b"other", "b", "a/key", 100)


async def test_layout_and_pruning(file_store: FileStore) -> None:
    await file_store.put("deep/er/still/obj", b"1")
    assert (file_store.root / "data" / "deep" / "er" / "still" / "obj").read_bytes() == b"1"
    assert (file_store.root / "meta" / "deep" / "er" / "still" / "obj.json").exists()
    assert list((file_store.root / "tmp").iterdir()) == []
    await file_store.delete("deep/er/still/obj")
    assert list((file_store.root / "data").iterdir()) == []
    assert list((file_store.root / "meta").iterdir()) == []


async def test_sidecar_from_an_interrupted_write_is_not_trusted(file_store: FileStore) -> None:
    first = await file_store.put("c/obj", b"first version", content_type="text/plain")
    meta = (file_store.root / "meta" / "c" / "obj.json").read_bytes()
    await file_store.put("c/obj", b"second!", content_type="text/csv")
    # A crash between the two renames leaves the new data beside the old sidecar.
    (file_store.root / "meta" / "c" / "obj.json").write_bytes(meta)
    info = await file_store.stat("c/obj")
    assert info.size == 7
    assert info.etag.startswith("W/")
    assert info.etag != first.etag
    assert info.content_type == "application/octet-stream"
    assert await file_store.read("c/obj") == b"second!"


async def test_key_and_prefix_collision_is_conflict(file_store: FileStore) -> None:
    await file_store.put("a/b", b"file")
    with pytest.raises(Conflict):
        await file_store.put("a/b/c", b"under a file")
    await file_store.put("d/e/f", b"x")
    with pytest.raises(Conflict):
        await file_store.put("d/e", b"over a directory")
    assert await file_store.read("a/b") == b"file"


async def test_symlink_cannot_escape_root(file_store: FileStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(b"not yours")
    await file_store.check()
    os.symlink(outside, file_store.root / "data" / "link")
    with pytest.raises(Invalid):
        await file_store.read("link/passwd")
    with pytest.raises(Invalid):
        await file_store.put("link/new", b"x")
    assert not (outside / "new").exists()


async def test_concurrent_writers_leave_one_whole_version(file_store: FileStore) -> None:
    bodies = [bytes([i]) * 300_000 for i in range(6)]
    for _ in range(5):
        await asyncio.gather(*(file_store.put("race/obj", b) for b in bodies))
        got = await file_store.read("race/obj")
        assert got in bodies
        info = await file_store.stat("race/obj")
        assert info.etag == hashlib.sha256(got).hexdigest()


async def test_presign_rejects_nonpositive_expiry(file_store: FileStore) -> None:
    with pytest.raises(Invalid):
        await file_store.presigned_get("k", expires_seconds=0)
    url = await file_store.presigned_get("k", expires_seconds=30)
    exp = int(parse_qs(urlsplit(url).query)["exp"][0])
    assert time.time() + 25 < exp <= time.time() + 31


async def test_platform_apps_serve_presigned_urls(platform: Any) -> None:
    """Every app from create_service_app serves the shared FileStore's links (gateway and services alike)."""
    from common.config import platform_settings
    from common.storage import open_store

    store = open_store(platform_settings())
    key = f"tests/presign/{uuid.uuid4().hex}.bin"
    await store.put(key, b"served by the platform", content_type="application/octet-stream")
    try:
        url = await store.presigned_get(key, expires_seconds=60)
        async with httpx.AsyncClient(timeout=10) as client:
            via_gateway = await client.get(platform.gateway_url + url)
            via_service = await client.get(platform.service_url("pathology") + url)
            tampered = await client.get(platform.gateway_url + url.replace("sig=", "sig=x"))
        assert (via_gateway.status_code, via_gateway.content) == (200, b"served by the platform")
        assert (via_service.status_code, via_service.content) == (200, b"served by the platform")
        assert tampered.status_code == 403
    finally:
        await store.delete(key)
