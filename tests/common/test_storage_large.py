"""A 200 MB object streams through each store with flat memory: generated on the fly, read back by chunk."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from common.storage import ObjectStore

SIZE = 200 * 1024 * 1024
CHUNK = 256 * 1024
# The S3 path holds one multipart part (16 MiB) plus the SDK's copy of it; nothing near the 200 MB body.
PEAK_LIMIT = 64 * 1024 * 1024

pytestmark = pytest.mark.slow


async def generated(size: int, digest: hashlib._Hash) -> AsyncIterator[bytes]:
    """Deterministic, incompressible-enough bytes, made chunk by chunk and hashed as they go."""
    block = hashlib.sha256(b"seed").digest() * (CHUNK // 32)
    sent = 0
    n = 0
    while sent < size:
        n += 1
        piece = n.to_bytes(8, "big") + block[8 : min(CHUNK, size - sent)]
        piece = piece[: min(CHUNK, size - sent)]
        digest.update(piece)
        sent += len(piece)
        yield piece


async def test_large_object_streams_with_flat_memory(object_store: ObjectStore) -> None:
    sent = hashlib.sha256()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        info = await object_store.put("large/slide.svs", generated(SIZE, sent), content_type="image/tiff")
        _, put_peak = tracemalloc.get_traced_memory()

        tracemalloc.reset_peak()
        received = hashlib.sha256()
        total = 0
        async for chunk in object_store.get("large/slide.svs"):
            received.update(chunk)
            total += len(chunk)
        _, get_peak = tracemalloc.get_traced_memory()

        tracemalloc.reset_peak()
        tail = b"".join([c async for c in object_store.get("large/slide.svs", offset=SIZE - 1000, length=5000)])
        middle = b"".join(
            [c async for c in object_store.get("large/slide.svs", offset=150 * 1024 * 1024, length=CHUNK * 3)]
        )
    finally:
        tracemalloc.stop()

    assert info.size == SIZE
    assert total == SIZE
    assert received.hexdigest() == sent.hexdigest()
    assert len(tail) == 1000
    assert len(middle) == CHUNK * 3
    assert middle[:8] == (150 * 1024 * 1024 // CHUNK + 1).to_bytes(8, "big")
    assert put_peak < PEAK_LIMIT, f"put peaked at {put_peak / 2**20:.1f} MiB"
    assert get_peak < PEAK_LIMIT, f"get peaked at {get_peak / 2**20:.1f} MiB"
    await object_store.delete("large/slide.svs")
