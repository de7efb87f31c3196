"""De-identified export (PS3.15 Annex E basic profile): the ZIP holds none of the originals' patient name, ID,
birth date, dates, institution, physicians, private tags or UIDs; new UIDs are consistent across the export;
an instance flagged with burned-in annotation is refused; the export is the requester's facility's only."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

import httpx
import pydicom
import pytest

from services.imaging.deid import ExportContext, Refused, deidentify
from tests.conftest import auth
from tests.imaging.imaging_support import make_instance, quiet_pydicom, read, stow, uid

quiet_pydicom()
NAME, PID = "Zhang^Sanfeng", "QH-33021-XYZ"


def _identifying(study: str, series: str, n: int, *, burned: bool = False) -> bytes:
    ds = read(make_instance(study=study, series=series, instance_number=n, seed=n, patient_name=NAME,
                            patient_id=PID, study_date="20230317", accession="ACC-77812", referring="Li^Ming"))
    ds.PatientBirthDate = "19580412"
    ds.InstitutionName = "Chengguan Township Health Centre"
    ds.PerformingPhysicianName = "Wang^Wu"
    ds.OperatorsName = "Zhao^Liu"
    ds.SeriesDate, ds.AcquisitionDate, ds.ContentDate = "20230317", "20230317", "20230317"
    ds.FrameOfReferenceUID = uid()
    ds.add_new(0x00091010, "LO", "PRIVATE-SECRET-VALUE")
    ds.private_block(0x0011, "TH TEST", create=True).add_new(0x01, "LO", "PRIVATE-SECRET-2")
    if burned:
        ds.BurnedInAnnotation = "YES"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.fixture(scope="module")
def studies(platform, login) -> dict[str, Any]:
    token = login("tech_a")
    made: dict[str, Any] = {"studies": [], "series": [], "sops": [], "files": []}
    for k in range(2):
        study, series = uid(), uid()
        files = [_identifying(study, series, n) for n in (1, 2)]
        if k == 0:
            files.append(_identifying(study, series, 3, burned=True))
        r = stow(platform.gateway_url, token, files)
        assert r.status_code == 200, r.text
        made["studies"].append(study)
        made["series"].append(series)
        made["sops"].extend(str(read(f).SOPInstanceUID) for f in files)
        made["files"].extend(files)
    return made


def _wait_ready(base: str, token: str, export_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = httpx.get(f"{base}/api/imaging/exports/{export_id}", headers=auth(token))
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("ready", "failed"):
            return dict(r.json())
        time.sleep(0.5)
    raise AssertionError("the export did not finish")


def test_deidentified_export_zip(platform, login, celery_worker, studies) -> None:
    token = login("doctor_a")
    base = platform.gateway_url
    r = httpx.post(f"{base}/api/imaging/exports", json={"study_uids": studies["studies"]}, headers=auth(token))
    assert r.status_code == 202, r.text
    export = _wait_ready(base, token, r.json()["id"])
    assert export["status"] == "ready", export
    assert export["report"]["instances"] == 4 and len(export["report"]["refused"]) == 1
    z = httpx.get(f"{base}/api/imaging/exports/{export['id']}/download", headers=auth(token))
    assert z.status_code == 200
    originals = [*studies["studies"], *studies["series"], *studies["sops"]]
    secrets = [NAME, "Zhang", PID, "19580412", "20230317", "ACC-77812", "Li^Ming", "Wang^Wu", "Zhao^Liu",
               "Chengguan", "PRIVATE-SECRET"]
    new_studies: dict[str, set[str]] = {}
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        names = zf.namelist()
        assert len(names) == 4
        for name in names:
            raw = zf.read(name)
            for text in [*secrets, *originals]:
                assert text.encode() not in raw, f"{text} left in {name}"
            ds = pydicom.dcmread(io.BytesIO(raw))
            assert ds.PatientIdentityRemoved == "YES" and "Annex E" in ds.DeidentificationMethod
            assert ds.PatientName == "" and ds.PatientID.startswith("ANON-")
            assert "PatientBirthDate" not in ds or ds.PatientBirthDate == ""
            assert "StudyDate" not in ds or ds.StudyDate == ""
            assert "InstitutionName" not in ds and "SeriesDate" not in ds
            assert not any(e.tag.is_private for e in ds)
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            assert name == f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
            new_studies.setdefault(ds.StudyInstanceUID, set()).add(ds.SeriesInstanceUID)
            assert ds.FrameOfReferenceUID.startswith("2.25.")
            assert ds.PixelData  # images kept
    # two studies, each with its one series under one consistent new UID; the same patient pseudonym
    assert len(new_studies) == 2 and all(len(s) == 1 for s in new_studies.values())
    # another facility cannot read or download the export
    other = login("doctor_b")
    for path in (f"/api/imaging/exports/{export['id']}", f"/api/imaging/exports/{export['id']}/download"):
        assert httpx.get(base + path, headers=auth(other)).status_code == 404
    # a study the caller cannot see is refused
    hidden = httpx.post(f"{base}/api/imaging/exports", json={"study_uids": studies["studies"][:1]},
                        headers=auth(login("doctor_b")))
    assert hidden.status_code == 404


def test_uids_are_consistent_within_one_export() -> None:
    study, series = uid(), uid()
    ctx = ExportContext()
    a = deidentify(read(make_instance(study=study, series=series, instance_number=1, patient_id="P1")), ctx)
    b = deidentify(read(make_instance(study=study, series=series, instance_number=2, patient_id="P1")), ctx)
    assert a.StudyInstanceUID == b.StudyInstanceUID != study
    assert a.SeriesInstanceUID == b.SeriesInstanceUID != series
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert a.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # well-known UIDs are kept
    assert a.PatientID == b.PatientID
    other = deidentify(read(make_instance(study=study, series=series)), ExportContext())
    assert other.StudyInstanceUID != a.StudyInstanceUID  # a new export: new UIDs


def test_burned_in_annotation_is_refused() -> None:
    ds = read(make_instance())
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(Refused):
        deidentify(ds, ExportContext())
    us = read(make_instance(modality="US"))
    with pytest.raises(Refused):
        deidentify(us, ExportContext())
    deidentify(us, ExportContext(allow_unflagged=True))
