"""Helpers of the ECG service tests: sample files, synthetic CSV traces, uploads and waiting for the worker."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import auth

REPO = Path(__file__).resolve().parents[2]
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
_GAIN = np.array([0.6, 1.0, 0.4, -0.8, 0.2, 0.7, -0.5, 0.3, 0.8, 1.2, 1.1, 0.9])

# The smallest sample of each format (relative to the ECG data set), with what the reader must report.
SAMPLES: dict[str, tuple[list[str], str, int, float]] = {
    # format: ([files], source_format, leads, fs)
    "scp": (["formats/scp/Example.scp"], "scp", 12, 500.0),
    "philips_xml": (["formats/philips_xml/129DYPRG_v1.03.xml"], "philips_xml", 12, 500.0),
    "dicom": (["formats/dicom/waveform_ecg.dcm"], "dicom", 12, 1000.0),
    "hl7_aecg": (["formats/hl7aecg/hl7_aecg_example_subject1_0.xml"], "hl7_aecg", 12, 500.0),
    "edf": (["formats/edf/contec_0000050.edf"], "edf", 12, 800.0),
    "ishne": (["formats/ishne/ECG_P28.01.ecg"], "ishne", 12, 1000.0),
    "wfdb": (["ludb/1.hea", "ludb/1.dat"], "wfdb", 12, 500.0),
}


def data_dir() -> Path:
    root = Path(os.environ.get("ECG_DATA_DIR") or REPO.parent / "shared" / "data" / "ecg").resolve()
    if not (root / "formats").is_dir():
        pytest.fail(f"ECG data directory {root} not found (set ECG_DATA_DIR to the shared ECG data set)")
    return root


def sample_files(fmt: str) -> list[tuple[str, bytes]]:
    root = data_dir()
    return [(Path(rel).name, (root / rel).read_bytes()) for rel in SAMPLES[fmt][0]]


# -- synthetic traces (Gaussian P-QRS-T model), written in the documented CSV dialect -------------------


def _g(t: np.ndarray, mu: float, sig: float, a: float) -> np.ndarray:
    return a * np.exp(-0.5 * ((t - mu) / sig) ** 2)


def sinus(fs: float = 500, seconds: float = 10, hr: float = 72, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    x = np.zeros(n)
    for c in np.arange(0.4, seconds - 0.4, 60 / hr):
        x += (_g(t, c - 0.16, 0.025, 0.12) + _g(t, c - 0.03, 0.01, -0.1) + _g(t, c, 0.012, 1.0)
              + _g(t, c + 0.03, 0.012, -0.25) + _g(t, c + 0.22, 0.04, 0.3))
    return np.outer(x, _GAIN) + rng.normal(0, 0.01, (n, 12))


def ventricular_tachycardia(fs: float = 500, seconds: float = 10, hr: float = 190, seed: int = 2) -> np.ndarray:
    """Wide, fast, P-less complexes: the analysis calls it VF/VT (one critical finding)."""
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    x = np.zeros(n)
    for c in np.arange(0.3, seconds - 0.2, 60 / hr):
        x += _g(t, c, 0.04, 1.4) + _g(t, c + 0.08, 0.04, -0.9) + _g(t, c + 0.2, 0.05, -0.3)
    return np.outer(x, _GAIN) + rng.normal(0, 0.01, (n, 12))


def noisy_bradycardia(fs: float = 500, seconds: float = 10, seed: int = 3) -> np.ndarray:
    """HR 35 (critical if clean) buried in motion artefact, wander and bursts: must raise nothing."""
    rng = np.random.default_rng(seed)
    base = sinus(fs, seconds, hr=35)
    n = base.shape[0]
    t = np.arange(n) / fs
    art = rng.normal(0, 0.8, (n, 12)) + 1.5 * np.sin(2 * np.pi * 0.7 * t)[:, None] * rng.uniform(0.5, 1.5, 12)
    burst = (rng.random(n) < 0.02)[:, None] * rng.normal(0, 4, (n, 12))
    return base + art + burst


def csv_bytes(signal: np.ndarray, fs: float = 500) -> bytes:
    out = io.StringIO()
    out.write(f"# fs={fs:g} units=mV\n")
    out.write("time_ms," + ",".join(LEADS) + "\n")
    for i, row in enumerate(signal):
        out.write(f"{i * 1000 / fs:g}," + ",".join(f"{v:.4f}" for v in row) + "\n")
    return out.getvalue().encode()


# -- the API --------------------------------------------------------------------------------------------


def upload(base: str, token: str, files: Iterable[tuple[str, bytes]], **fields: str) -> httpx.Response:
    parts = [("file", (name, data, "application/octet-stream")) for name, data in files]
    return httpx.post(f"{base}/api/ecg/recordings", files=parts, data=fields, headers=auth(token), timeout=60)


def wait_analysed(base: str, token: str, recording_id: str, timeout: float = 90) -> dict[str, Any]:
    """The recording once the worker has analysed it (ready, or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{base}/api/ecg/recordings/{recording_id}", headers=auth(token), timeout=10)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] not in ("new", "analysing"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"recording {recording_id} still {body['status']} after {timeout} s")
        time.sleep(0.3)


def wait_download(base: str, token: str, recording_id: str, kind: str, timeout: float = 60,
                  min_version: int = 0) -> bytes:
    """The rendered report (pdf or dicom), waiting out the 409 ``not_ready`` while the worker renders."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{base}/api/ecg/recordings/{recording_id}/report/{kind}", headers=auth(token), timeout=30)
        if r.status_code == 200:
            return r.content
        assert r.status_code == 409 and r.json()["error"] == "not_ready", r.text
        if time.monotonic() > deadline:
            raise AssertionError(f"report {kind} of {recording_id} not rendered after {timeout} s")
        time.sleep(0.3)


def objects_under(objects_root: Path, prefix: str) -> set[str]:
    """Object keys (FileStore layout: <root>/<bucket>/data/<key>) starting with ``prefix``."""
    found: set[str] = set()
    for bucket in objects_root.iterdir() if objects_root.is_dir() else []:
        data = bucket / "data"
        base = data / prefix
        if base.is_dir():
            found |= {str(p.relative_to(data)) for p in base.rglob("*") if p.is_file()}
    return found


def critical_recording_with_alert(base: str, token: str, timeout: float = 90) -> dict[str, str]:
    """Upload a VT as ``token``'s user and wait for its alert: {"ecg_recording": id, "ecg_alert": id}."""
    r = upload(base, token, [("vt.csv", csv_bytes(ventricular_tachycardia()))], priority="stat")
    assert r.status_code == 201, r.text
    rec = wait_analysed(base, token, r.json()["id"], timeout)
    assert rec["alert_id"], f"the VT raised no alert: {rec.get('findings')}"
    return {"ecg_recording": rec["id"], "ecg_alert": rec["alert_id"]}


# -- the duty roster -------------------------------------------------------------------------------------


def user_id_of(token: str) -> str:
    """The user id (``sub``) of an access token (read, not verified: the token came from our gateway)."""
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def go_on_duty(base: str, token: str, **body: Any) -> httpx.Response:
    """POST /api/ecg/duty (default: the caller, from now, for one hour)."""
    if "ends_at" not in body and "hours" not in body:
        body["hours"] = 1
    return httpx.post(f"{base}/api/ecg/duty", json=body, headers=auth(token), timeout=30)


def clear_roster(database_url: str) -> None:
    """End every running shift and remove every future one (as the platform), so that a test starts from
    an empty roster whatever ran before it."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.system', 'on', true)")
                await conn.execute("DELETE FROM ecg.duty_shifts WHERE starts_at >= now()")
                await conn.execute("UPDATE ecg.duty_shifts SET ends_at = now() WHERE ends_at > now()")
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:  # callers may be inside a running event loop
        pool.submit(asyncio.run, run()).result(timeout=30)
