"""DCMTK's command-line tools against the real DIMSE listener process, as a modality or a PACS workstation
would use them: storescu pushes a study, findscu searches it in the patient root and the study root models,
movescu moves it to a DCMTK storescp that the test starts on a loopback port (registered as an AE with host
and port), getscu retrieves it on its own association (compressed as stored when it offers that syntax,
decompressed when it takes uncompressed syntaxes only)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.data import get_testdata_file

from infra.local.stack import free_port
from tests.conftest import auth
from tests.imaging.dimse_support import ANY_TS, ARCHIVE_AE, dataset_bytes, listener, register_ae
from tests.imaging.imaging_support import quiet_pydicom, uid

__all__ = ["listener"]  # the module-scoped fixture, imported for pytest

quiet_pydicom()

TOOLS = ("storescu", "findscu", "movescu", "getscu", "storescp")


@pytest.fixture(autouse=True)
def _dcmtk_installed() -> None:
    """A missing tool fails the test (never a silent skip): `make test` installs DCMTK."""
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        pytest.fail(f"DCMTK tools missing: {missing}; infra/local/system-deps.sh python installs them")


# Explicit VR LE CT, MR, JPEG lossless (process 14 SV1) RGB secondary capture, JPEG 2000 lossless US
SOURCES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_jpeg_gdcm.dcm", "US1_J2KR.dcm")
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
PROPOSE = {JPEG_LOSSLESS: "-xs", "1.2.840.10008.1.2.4.90": "-xv"}
ENV = {**os.environ, "LC_ALL": "C"}


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=ENV)
    assert r.returncode == 0, " ".join(args) + "\n" + r.stdout + r.stderr
    return r


def _fresh(name: str, study: str, patient_id: str, directory: Path) -> Path:
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, uid()
    ds.PatientID, ds.PatientName = patient_id, "Dimse^Test"
    if 0xFFFCFFFC in ds:  # storescu does not send Data Set Trailing Padding (CT_small has some)
        del ds[0xFFFCFFFC]
    path = directory / name
    ds.save_as(path)
    return path


def _read_all(directory: Path) -> dict[str, bytes]:
    """Part-10 files written by a DCMTK tool, by SOP Instance UID."""
    out = {}
    for p in directory.iterdir():
        if p.is_file():
            data = p.read_bytes()
            out[str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)] = data
    return out


def _stored(platform: Any, token: str, study: str, series: str, sop: str) -> bytes:
    """The archive's copy, as WADO-RS at the gateway answers it with transfer-syntax=*."""
    url = f"{platform.gateway_url}/dicom-web/studies/{study}/series/{series}/instances/{sop}"
    r = httpx.get(url, headers={**auth(token), "Accept": ANY_TS}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    head = f"Content-Type: {r.headers['content-type']}\r\n\r\n".encode()
    parts = list(BytesParser(policy=HTTP).parsebytes(head + r.content).iter_parts())
    assert len(parts) == 1
    return bytes(parts[0].get_payload(decode=True))


@pytest.fixture(scope="module")
def pushed(platform, login, listener, tmp_path_factory) -> dict[str, Any]:
    """Four files in one study pushed by storescu as CG_CT, each in its own transfer syntax."""
    directory = tmp_path_factory.mktemp("dcmtk-push")
    study, patient_id = uid(), f"PID-DIMSE-{uuid.uuid4().hex[:8]}"
    paths = [_fresh(name, study, patient_id, directory) for name in SOURCES]
    sent = {}
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        sent[str(ds.SOPInstanceUID)] = (p, str(ds.file_meta.TransferSyntaxUID), str(ds.SeriesInstanceUID))
    # storescu proposes uncompressed syntaxes unless told to propose a compressed one (-xs JPEG lossless,
    # -xv JPEG 2000 lossless), which it then sends as is
    by_option: dict[str, list[str]] = {}
    for path, ts, _ in sent.values():
        by_option.setdefault(PROPOSE.get(ts, "-x="), []).append(str(path))
    for option, files in by_option.items():
        _run("storescu", option, "-aet", "CG_CT", "-aec", ARCHIVE_AE, "127.0.0.1", str(listener), *files)
    token = login("tech_a")  # 城关镇: CG_CT's facility
    stored = {sop: _stored(platform, token, study, series, sop) for sop, (_, _, series) in sent.items()}
    for sop, (path, ts, _) in sent.items():
        # as pushed: the transfer syntax and the encoded pixel data (storescu itself re-encodes some other
        # elements of the data set, so the whole data set is compared for what leaves the archive below)
        got = pydicom.dcmread(io.BytesIO(stored[sop]))
        assert str(got.file_meta.TransferSyntaxUID) == ts, path.name
        assert got.PixelData == pydicom.dcmread(path).PixelData, path.name
    return {"study": study, "patient_id": patient_id, "sent": sent, "stored": stored}


def _find(port: int, model: str, *keys: str, directory: Path) -> list[pydicom.Dataset]:
    directory.mkdir()
    args = ["findscu", model, "-aet", "CG_CT", "-aec", ARCHIVE_AE, "-X", "-od", str(directory)]
    for key in keys:
        args += ["-k", key]
    _run(*args, "127.0.0.1", str(port))
    return [pydicom.dcmread(p) for p in sorted(directory.glob("rsp*.dcm"))]


def test_findscu_patient_root_and_study_root(listener, pushed, tmp_path) -> None:
    pid, study = pushed["patient_id"], pushed["study"]
    patients = _find(listener, "-P", "QueryRetrieveLevel=PATIENT", f"PatientID={pid}", "PatientName",
                     directory=tmp_path / "p")
    assert [(p.PatientID, str(p.PatientName)) for p in patients] == [(pid, "Dimse^Test")]
    # patient root, study level under the patient
    studies = _find(listener, "-P", "QueryRetrieveLevel=STUDY", f"PatientID={pid}", "StudyInstanceUID",
                    "NumberOfStudyRelatedInstances", directory=tmp_path / "ps")
    assert [(s.StudyInstanceUID, int(s.NumberOfStudyRelatedInstances)) for s in studies] == [(study, 4)]
    # study root: the study by patient id, then its series and one series' images
    studies = _find(listener, "-S", "QueryRetrieveLevel=STUDY", f"PatientID={pid}", "StudyInstanceUID",
                    "ModalitiesInStudy", directory=tmp_path / "s")
    assert [s.StudyInstanceUID for s in studies] == [study]
    assert set(studies[0].ModalitiesInStudy) == {"CT", "MR", "OT", "US"}
    series = _find(listener, "-S", "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={study}", "SeriesInstanceUID",
                   "Modality", directory=tmp_path / "se")
    assert sorted(s.Modality for s in series) == ["CT", "MR", "OT", "US"]
    sop, (_, _, series_uid) = next(iter(pushed["sent"].items()))
    images = _find(listener, "-S", "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={study}",
                   f"SeriesInstanceUID={series_uid}", "SOPInstanceUID", directory=tmp_path / "i")
    assert [i.SOPInstanceUID for i in images] == [sop]
    # another facility's AE finds nothing
    other = subprocess.run(["findscu", "-S", "-aet", "LJ_DR", "-aec", ARCHIVE_AE, "-X", "-od", str(tmp_path),
                            "-k", "QueryRetrieveLevel=STUDY", "-k", f"PatientID={pid}", "-k", "StudyInstanceUID",
                            "127.0.0.1", str(listener)], capture_output=True, text=True, timeout=60, env=ENV)
    assert other.returncode == 0 and not list(tmp_path.glob("rsp*.dcm"))


@pytest.fixture
def storescp(tmp_path) -> Iterator[tuple[int, Path]]:
    """DCMTK storescp on a loopback port: all transfer syntaxes it supports, files written as received."""
    port, out = free_port(), tmp_path / "received"
    out.mkdir()
    proc = subprocess.Popen(["storescp", "-aet", "DCMTK_DEST", "+xa", "+B", "-od", str(out), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "storescp did not start"
                time.sleep(0.1)
        yield port, out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_movescu_moves_the_study_to_a_registered_storescp(listener, pushed, seeded, storescp) -> None:
    port, out = storescp
    register_ae(seeded.database_url, "DCMTK_DEST", "QH-CG", port)
    r = _run("movescu", "-S", "-aet", "CG_CT", "-aec", ARCHIVE_AE, "-aem", "DCMTK_DEST",
             "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={pushed['study']}",
             "127.0.0.1", str(listener))
    received = _read_all(out)
    assert set(received) == set(pushed["sent"]), r.stdout + r.stderr
    for sop, (path, ts, _) in pushed["sent"].items():
        got = pydicom.dcmread(io.BytesIO(received[sop]), stop_before_pixels=True)
        assert str(got.file_meta.TransferSyntaxUID) == ts  # sent as stored, compressed ones too
        assert dataset_bytes(received[sop]) == dataset_bytes(pushed["stored"][sop]), path.name
    # an unregistered destination: refused (0xA801, "MoveDestinationUnknown"), movescu fails
    r = subprocess.run(["movescu", "-v", "-S", "-aet", "CG_CT", "-aec", ARCHIVE_AE, "-aem", "NOWHERE",
                        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={pushed['study']}",
                        "127.0.0.1", str(listener)], capture_output=True, text=True, timeout=60, env=ENV)
    assert r.returncode != 0 and "MoveDestinationUnknown" in r.stdout + r.stderr


def test_getscu_retrieves_the_study(listener, pushed, tmp_path) -> None:
    """getscu offers, per storage SOP class, one context with its preferred syntax and the uncompressed
    ones; the archive (which sends) takes an uncompressed one it can always produce: uncompressed originals
    come as stored, compressed ones decompressed (+xs: JPEG lossless first makes no difference)."""
    sent = pushed["sent"]
    for option in ("+x=", "+xs"):
        out = tmp_path / option
        out.mkdir()
        _run("getscu", "-S", option, "+B", "-aet", "CG_CT", "-aec", ARCHIVE_AE, "-od", str(out),
             "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={pushed['study']}", "127.0.0.1",
             str(listener))
        received = _read_all(out)
        assert set(received) == set(sent), option
        for sop, (path, ts, _) in sent.items():
            got = pydicom.dcmread(io.BytesIO(received[sop]))
            assert not got.file_meta.TransferSyntaxUID.is_compressed, (option, path.name)
            if ts == "1.2.840.10008.1.2.1":
                assert dataset_bytes(received[sop]) == dataset_bytes(pushed["stored"][sop]), (option, path.name)
            else:
                assert (got.pixel_array == pydicom.dcmread(path).pixel_array).all(), (option, path.name)
