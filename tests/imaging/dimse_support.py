"""Shared by the DIMSE tests: the listener (``python -m services.imaging.dimse``) as a subprocess of the test,
pynetdicom SCUs, registering a move destination, the data set bytes of a Part-10 file."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pynetdicom import AE

from infra.local.stack import free_port

REPO = Path(__file__).resolve().parents[2]
ARCHIVE_AE = "TH_ARCHIVE"
ANY_TS = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def dataset_bytes(part10: bytes) -> bytes:
    """The bytes after the File Meta Information (group length element, explicit VR little endian)."""
    assert part10[128:132] == b"DICM" and part10[132:136] == b"\x02\x00\x00\x00"
    (group_length,) = struct.unpack("<I", part10[140:144])
    return part10[144 + group_length:]


@pytest.fixture(scope="module")
def listener(platform, tmp_path_factory) -> Iterator[int]:
    """The DIMSE listener on a free loopback port, against the test platform's database and object store."""
    port = free_port()
    env = {**platform.env, "IMAGING_DIMSE_PORT": str(port), "IMAGING_DIMSE_AE_TITLE": ARCHIVE_AE,
           "LOG_LEVEL": "INFO"}
    log_path = tmp_path_factory.mktemp("dimse") / "dimse.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "services.imaging.dimse"], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text()[-4000:]
            if b"listening on" in log_path.read_bytes():
                break
            assert time.monotonic() < deadline, log_path.read_text()[-4000:]
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        text = log_path.read_text(errors="replace")
        # association events are logged, patient identifiers are not
        assert "association established" in text
        assert "PID-DIMSE" not in text and "Dimse^Test" not in text


def scu(ae_title: str, *contexts: Any) -> AE:
    """A pynetdicom AE proposing ``contexts`` (an abstract syntax, or (abstract syntax, [transfer syntaxes]))."""
    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    for cx in contexts:
        ae.add_requested_context(*cx) if isinstance(cx, tuple) else ae.add_requested_context(cx)
    return ae


def register_ae(database_url: str, ae_title: str, facility_code: str, port: int | None) -> None:
    """Register (or re-point) an AE title for a demo facility, with 127.0.0.1:port as its address."""
    from gateway.identity.seed import demo_facility

    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                "INSERT INTO imaging.ae_titles (ae_title, facility_id, host, port, description) VALUES"
                " ($1, $2, $3, $4, 'test') ON CONFLICT (ae_title) DO UPDATE SET host = EXCLUDED.host,"
                " port = EXCLUDED.port, facility_id = EXCLUDED.facility_id, active = true", ae_title,
                demo_facility(facility_code).id, "127.0.0.1" if port else None, port)
        finally:
            await conn.close()

    asyncio.run(run())
