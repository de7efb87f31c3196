"""Debian's Orthanc with its DICOMweb plugin, installed when missing and started on free loopback ports."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

PIDS: dict[str, int] = {}
PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc/plugins")


def ensure_orthanc() -> str:
    binary = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
    if binary and _plugin():
        return binary
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("Orthanc is needed: apt-get install orthanc orthanc-dicomweb")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    # policy-rc.d (if present) keeps the packaged system service from starting; we stop it below regardless
    subprocess.run(["apt-get", "install", "-y", "-qq", "orthanc", "orthanc-dicomweb"], check=True, env=env)
    with contextlib.suppress(Exception):
        subprocess.run(["service", "orthanc", "stop"], check=False, capture_output=True, timeout=30)
    return shutil.which("Orthanc") or "/usr/sbin/Orthanc"


def _plugin() -> str | None:
    for d in PLUGIN_DIRS:
        p = Path(d) / "libOrthancDicomWeb.so"
        if p.exists():
            return str(p)
    return None


def version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    first = out.strip().splitlines()[0] if out.strip() else "unknown"
    pkg = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version}; ", "orthanc", "orthanc-dicomweb"],
                         capture_output=True, text=True).stdout
    return f"{Path(first.split()[0]).name} {' '.join(first.split()[1:])} (Debian {pkg.strip(' ;') or '?'})"


@contextlib.contextmanager
def orthanc(binary: str, work: Path, log_dir: Path) -> Iterator[str]:
    """Orthanc on a free loopback HTTP port, DICOM server off, storage under ``work``; yields its base URL."""
    from infra.local.stack import free_port

    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "Name": "bench-orthanc",
        "StorageDirectory": str(work / "storage"),
        "IndexDirectory": str(work / "index"),
        "StorageCompression": False,
        "HttpPort": port,
        "DicomServerEnabled": False,   # no DIMSE port: nothing listens beyond what we ask
        "DicomPort": free_port(),
        "RemoteAccessAllowed": False,  # Orthanc binds to all interfaces; this refuses every non-loopback peer
        "AuthenticationEnabled": False,
        "SaveJobs": False,
        "HttpThreadsCount": 50,
        "Plugins": [_plugin()],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Ssl": False},
    }
    cfg = work / "orthanc.json"
    cfg.write_text(json.dumps(config, indent=2))
    log = (log_dir / "orthanc.log").open("wb")
    proc = subprocess.Popen([binary, str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    PIDS["orthanc"] = proc.pid
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"Orthanc exited: {(log_dir / 'orthanc.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/system", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("Orthanc did not start")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
