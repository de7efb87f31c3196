"""The ObjectStore contract, run against FileStore (tmp dir) and S3Store (a real S3-protocol server)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from urllib.parse import urljoin

import httpx
import pytest

from common.config import PlatformSettings
from common.errors import Invalid, NotFound
from common.storage import ObjectStore, RangeNotSatisfiable, open_store
from common.storage_file import FileStore
from common.storage_s3 import S3Store
from tests.fixtures.s3 import PresignServer


async def chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def collect(it: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in it])


def sibling(store: ObjectStore, prefix: str) -> ObjectStore:
    """The same bucket seen under a key prefix (how the cold tier and services partition a bucket)."""
    if isinstance(store, FileStore):
        return FileStore(store.base_root, bucket=store.bucket, prefix=prefix, secret="test-presign-secret")
    assert isinstance(store, S3Store)
    return S3Store(store.client, store.bucket, prefix=prefix, region=store.region)


async def test_put_stat_read_delete(object_store: ObjectStore) -> None:
    info = await object_store.put("ecg/rec-1/signal.bin", b"\x00\x01hello", content_type="application/x-test")
    assert info.key == "ecg/rec-1/signal.bin"
    assert info.size == 7
    assert info.content_type == "application/x-test"
    assert info.etag
    stat = await object_store.stat("ecg/rec-1/signal.bin")
    assert (stat.size, stat.content_type, stat.etag) == (7, "application/x-test", info.etag)
    assert await object_store.exists("ecg/rec-1/signal.bin")
    assert await object_store.read("ecg/rec-1/signal.bin") == b"\x00\x01hello"
    await object_store.delete("ecg/rec-1/signal.bin")
    assert not await object_store.exists("ecg/rec-1/signal.bin")
    await object_store.delete("ecg/rec-1/signal.bin")  # deleting a missing key is not an error


async def test_missing_key_is_not_found(object_store: ObjectStore) -> None:
    with pytest.raises(NotFound):
        await object_store.stat("nope/missing")
    with pytest.raises(NotFound):
        await object_store.read("nope/missing")
    with pytest.raises(NotFound):
        await collect(object_store.get("nope/missing", offset=3, length=2))
    assert not await object_store.exists("nope/missing")


async def test_streamed_put_and_overwrite(object_store: ObjectStore) -> None:
    body = bytes(range(256)) * 40
    info = await object_store.put("a/b.bin", chunks(body, 333), content_type="application/dicom")
    assert info.size == len(body)
    assert await object_store.read("a/b.bin") == body
    second = await object_store.put("a/b.bin", b"short", length=5)
    assert second.size == 5
    assert second.etag != info.etag
    assert await object_store.read("a/b.bin") == b"short"
    assert (await object_store.stat("a/b.bin")).content_type == "application/octet-stream"


async def test_etag_is_stable_for_same_content(object_store: ObjectStore) -> None:
    a = await object_store.put("same/1", b"identical bytes")
    b = await object_store.put("same/2", chunks(b"identical bytes", 4))
    assert a.etag == b.etag
    if isinstance(object_store, FileStore):
        assert a.etag == hashlib.sha256(b"identical bytes").hexdigest()


async def test_ranges(object_store: ObjectStore) -> None:
    body = bytes(range(100))
    await object_store.put("r/obj", body)
    assert await collect(object_store.get("r/obj", offset=10)) == body[10:]
    assert await collect(object_store.get("r/obj", offset=10, length=5)) == body[10:15]
    assert await collect(object_store.get("r/obj", length=3)) == body[:3]
    assert await collect(object_store.get("r/obj", offset=95, length=50)) == body[95:]  # clamped
    assert await collect(object_store.get("r/obj", offset=20, length=0)) == b""
    with pytest.raises(RangeNotSatisfiable):
        await collect(object_store.get("r/obj", offset=100))
    with pytest.raises(Invalid):
        await collect(object_store.get("r/obj", offset=-1))


async def test_list_by_prefix_in_key_order(object_store: ObjectStore) -> None:
    keys = ["p/a/1", "p/a/2", "p/a-c", "p/a0", "p/b/x/y", "q/other"]
    for k in reversed(keys):
        await object_store.put(k, k.encode())
    listed = [i.key async for i in object_store.list("p/")]
    assert listed == ["p/a-c", "p/a/1", "p/a/2", "p/a0", "p/b/x/y"]
    assert [i.key async for i in object_store.list("p/a")] == ["p/a-c", "p/a/1", "p/a/2", "p/a0"]
    assert [i.key async for i in object_store.list("p/a/")] == ["p/a/1", "p/a/2"]
    assert [i.key async for i in object_store.list("none/")] == []
    everything = [i async for i in object_store.list("")]
    assert [i.key for i in everything] == sorted(keys)
    assert all(i.size == len(i.key) and i.etag for i in everything)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs/key",
        "../escape",
        "a/../../b",
        "a//b",
        "a/./b",
        "trailing/",
        "nul\x00byte",
        "a\\b",
        "new\nline",
        "x" * 1025,
    ],
)
async def test_unsafe_keys_rejected(object_store: ObjectStore, key: str) -> None:
    with pytest.raises(Invalid):
        await object_store.put(key, b"x")
    with pytest.raises(Invalid):
        await object_store.stat(key)


async def test_unsafe_prefix_rejected(object_store: ObjectStore) -> None:
    with pytest.raises(Invalid):
        [i async for i in object_store.list("../")]
    with pytest.raises(Invalid):
        [i async for i in object_store.list("/abs")]


async def test_unicode_and_odd_keys(object_store: ObjectStore) -> None:
    key = "imaging/清河县/研究 1/a+b%20c?d#e.dcm"
    await object_store.put(key, b"dicom")
    assert await object_store.read(key) == b"dicom"
    assert [i.key async for i in object_store.list("imaging/清河县/")] == [key]


async def test_declared_length_mismatch_leaves_nothing(object_store: ObjectStore) -> None:
    with pytest.raises((Invalid, OSError, ValueError)):
        await object_store.put("len/short", chunks(b"12345", 2), length=9)
    with pytest.raises(Invalid):
        await object_store.put("len/long", b"123456789", length=3)
    assert not await object_store.exists("len/short")
    assert not await object_store.exists("len/long")


async def test_failing_source_leaves_nothing(object_store: ObjectStore) -> None:
    class Broken(Exception):
        pass

    async def source() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise Broken("client went away")

    with pytest.raises(Broken):
        await object_store.put("broken/upload", source())
    assert not await object_store.exists("broken/upload")
    if isinstance(object_store, FileStore):
        assert list((object_store.root / "tmp").iterdir()) == []


async def test_prefixed_store_is_isolated(object_store: ObjectStore) -> None:
    cold = sibling(object_store, "cold")
    await cold.put("studies/s1", b"cold copy")
    await object_store.put("studies/s1", b"hot copy")
    assert await cold.read("studies/s1") == b"cold copy"
    assert await object_store.read("cold/studies/s1") == b"cold copy"
    assert [i.key async for i in cold.list("")] == ["studies/s1"]
    await cold.delete("studies/s1")
    assert await object_store.read("studies/s1") == b"hot copy"


@pytest.fixture
def presign_base(object_store: ObjectStore, file_presign_server: PresignServer) -> str:
    """Where a relative (FileStore) presigned URL is served; S3 URLs are absolute."""
    if isinstance(object_store, FileStore):
        file_presign_server.app.state.store = object_store
        return file_presign_server.url + "/"
    return ""


async def test_presigned_get_over_http(object_store: ObjectStore, presign_base: str) -> None:
    body = b"report-pdf-bytes" * 1000
    await object_store.put("reports/r1.pdf", body, content_type="application/pdf")
    url = urljoin(presign_base, await object_store.presigned_get("reports/r1.pdf", expires_seconds=60))
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        assert r.content == body
        assert r.headers["content-type"].startswith("application/pdf")
        partial = await client.get(url, headers={"Range": "bytes=16-31"})
        assert partial.status_code == 206
        assert partial.content == body[16:32]


async def test_check_is_ready(object_store: ObjectStore) -> None:
    await object_store.check()


def test_open_store_picks_by_settings(tmp_path: object) -> None:
    file_settings = PlatformSettings(object_store="file", object_store_root=tmp_path)
    store = open_store(file_settings, bucket="cold-tier", prefix="imaging")
    assert isinstance(store, FileStore)
    assert (store.bucket, store.prefix) == ("cold-tier", "imaging/")
    s3_settings = PlatformSettings(object_store="s3", s3_endpoint="http://127.0.0.1:9", s3_bucket="hot")
    s3 = open_store(s3_settings)
    assert isinstance(s3, S3Store)
    assert s3.bucket == "hot"
    with pytest.raises(Invalid):
        open_store(file_settings, bucket="Bad_Bucket")
