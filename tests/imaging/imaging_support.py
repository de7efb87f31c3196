"""Helpers for the imaging tests: instances made with pydicom, raw STOW-RS bodies, a dicomweb-client."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.conftest import auth

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
PIXEL_TAG_BYTES = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")


def uid() -> str:
    return generate_uid(prefix="1.2.826.0.1.3680043.8.498.")


def make_instance(*, study: str | None = None, series: str | None = None, sop: str | None = None,
                  patient_name: str = "Test^Patient", patient_id: str | None = None, study_date: str = "20240115",
                  study_time: str = "101500", modality: str = "CT", accession: str = "", referring: str = "",
                  description: str = "", series_number: int = 1, instance_number: int = 1, frames: int = 1,
                  rows: int = 8, columns: int = 8, charset: str = "ISO_IR 192", seed: int = 0) -> bytes:
    """A small, valid CT-like Part-10 instance (Explicit VR Little Endian, 16-bit pixels)."""
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = sop or uid()
    ds.StudyInstanceUID = study or uid()
    ds.SeriesInstanceUID = series or uid()
    ds.PatientName = patient_name
    ds.PatientID = patient_id if patient_id is not None else f"P{uuid.uuid4().hex[:10]}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate, ds.StudyTime = study_date, study_time
    ds.AccessionNumber = accession
    ds.ReferringPhysicianName = referring
    ds.StudyDescription = description
    ds.StudyID = "1"
    ds.Modality = modality
    ds.SeriesNumber, ds.InstanceNumber = series_number, instance_number
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if frames > 1:
        ds.NumberOfFrames = frames
    rng = np.random.default_rng(seed)
    ds.PixelData = rng.integers(0, 4096, size=(frames, rows, columns), dtype="<u2").tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def multipart(parts: Sequence[bytes | tuple[str, bytes]], boundary: str = "b0undary-7f3c") -> tuple[bytes, str]:
    """A STOW-RS body (parts: bytes as application/dicom, or (content type, bytes))."""
    out = io.BytesIO()
    for part in parts:
        ctype, data = part if isinstance(part, tuple) else ("application/dicom", part)
        out.write(f"--{boundary}\r\nContent-Type: {ctype}\r\n\r\n".encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f'multipart/related; type="application/dicom"; boundary={boundary}'


def stow(base: str, token: str, parts: Sequence[bytes | tuple[str, bytes]], study: str | None = None,
         timeout: float = 120) -> httpx.Response:
    body, ctype = multipart(parts)
    url = f"{base}/dicom-web/studies" + (f"/{study}" if study else "")
    return httpx.post(url, content=body, headers={**auth(token), "Content-Type": ctype,
                                                  "Accept": "application/dicom+json"}, timeout=timeout)


def client(base: str, token: str) -> DICOMwebClient:
    return DICOMwebClient(url=f"{base}/dicom-web", headers=auth(token))


def sequence(body: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    return list((body.get(tag) or {}).get("Value") or [])


def value(item: dict[str, Any], tag: str) -> Any:
    values = (item.get(tag) or {}).get("Value") or []
    return values[0] if values else None


def read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def pixel_bearing_test_files() -> list[Path]:
    """Every file of pydicom's test set and pydicom-data that holds a pixel data element (found by its tag)."""
    from pydicom.data import get_testdata_files

    out = []
    for name in get_testdata_files():
        path = Path(name)
        if not path.is_file():
            continue
        data = path.read_bytes()
        if any(t in data for t in PIXEL_TAG_BYTES):
            out.append(path)
    return sorted(out, key=lambda p: (p.name, str(p)))


def sop_uid_of(path: Path) -> str | None:
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        return str(ds.get("SOPInstanceUID", "") or "") or None
    except Exception:
        return None


def rounds(paths: Iterable[Path], key: Any) -> list[list[Path]]:
    """Split ``paths`` into rounds in which ``key(path)`` (a SOP Instance UID) is unique."""
    out: list[list[Path]] = []
    for path in paths:
        k = key(path)
        for r in out:
            if k is None or all(key(p) != k for p in r):
                r.append(path)
                break
        else:
            out.append([path])
    return out


def quiet_pydicom() -> None:
    import warnings

    warnings.filterwarnings("ignore", module="pydicom")


def critical_alert_of(gateway_url: str, requester_token: str, reader_token: str) -> str:
    """The id of a critical-finding alert on a new study of the requester, flagged by the reader."""
    study = uid()
    assert stow(gateway_url, requester_token, [make_instance(study=study)]).status_code == 200
    base = f"{gateway_url}/api/imaging/studies/{study}"
    claim = httpx.post(f"{base}/claim", headers=auth(reader_token), timeout=30)
    assert claim.status_code == 200, claim.text
    r = httpx.put(f"{base}/report", headers=auth(reader_token), timeout=30, json={
        "version": claim.json()["version"], "critical": True, "critical_note": "危急值"})
    assert r.status_code == 200, r.text
    items = httpx.get(f"{gateway_url}/api/imaging/alerts", headers=auth(requester_token), timeout=30).json()["items"]
    return str(next(a["id"] for a in items if a["study_instance_uid"] == study))
