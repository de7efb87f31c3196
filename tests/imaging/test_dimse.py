"""The DIMSE listener against real peers on loopback: pynetdicom as SCU (C-ECHO, C-STORE, C-FIND, C-GET,
C-MOVE to a storage SCP started here) and DCMTK's storescu / findscu, all landing in the archive that the
gateway's DICOMweb serves."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, build_role, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from infra.local.stack import free_port
from tests.imaging.dimse_support import ANY_TS, ARCHIVE_AE, dataset_bytes, listener, register_ae, scu
from tests.imaging.imaging_support import client, uid

__all__ = ["listener"]  # the module-scoped fixture, imported for pytest

SOURCES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_jpeg_gdcm.dcm")  # Explicit LE CT and MR; JPEG lossless RGB
_scu = scu


def fresh_copy(name: str, study: str, patient_id: str, directory: Path) -> Path:
    """A pydicom test file under new UIDs and a test patient; the pixel data stays as it was encoded."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, uid()
    ds.PatientID, ds.PatientName = patient_id, "Dimse^Test"
    path = directory / name
    ds.save_as(path)
    return path


def c_store(port: int, ae_title: str, paths: list[Path]) -> list[int]:
    contexts = {(str(pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID),
                 str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID)) for p in paths}
    ae = _scu(ae_title, *((sop, [ts]) for sop, ts in sorted(contexts)))
    assoc = ae.associate("127.0.0.1", port, ae_title=ARCHIVE_AE)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(p).Status) for p in paths]
    finally:
        assoc.release()


@pytest.fixture(scope="module")
def pushed(listener, tmp_path_factory) -> dict[str, Any]:
    """Three test files (CT, MR, JPEG-compressed secondary capture) in one study, C-STOREd as CG_CT."""
    directory = tmp_path_factory.mktemp("pushed")
    study, patient_id = uid(), f"PID-DIMSE-{uuid.uuid4().hex[:8]}"
    paths = [fresh_copy(name, study, patient_id, directory) for name in SOURCES]
    statuses = c_store(listener, "CG_CT", paths)
    assert statuses == [0, 0, 0]
    sent = {}
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        sent[str(ds.SOPInstanceUID)] = (str(ds.SeriesInstanceUID), p.read_bytes())
    return {"study": study, "patient_id": patient_id, "sent": sent, "paths": paths}


def test_echo(listener) -> None:
    assoc = _scu("CG_CT", Verification).associate("127.0.0.1", listener, ae_title=ARCHIVE_AE)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_unknown_calling_ae_is_rejected(listener) -> None:
    assoc = _scu("NOT_REGISTERED", Verification).associate("127.0.0.1", listener, ae_title=ARCHIVE_AE)
    assert assoc.is_rejected and not assoc.is_established


def test_stored_study_is_served_by_dicomweb_byte_for_byte(platform, login, pushed) -> None:
    c = client(platform.gateway_url, login("tech_a"))
    studies = c.search_for_studies(search_filters={"PatientID": pushed["patient_id"]})
    assert [s["0020000D"]["Value"][0] for s in studies] == [pushed["study"]]
    assert studies[0]["00201208"]["Value"][0] == 3
    for sop, (series, data) in pushed["sent"].items():
        url = f"{c.base_url}/studies/{pushed['study']}/series/{series}/instances/{sop}"
        parts = list(c._decode_multipart_message(c._http_get(url, headers={"Accept": ANY_TS}), stream=False))
        assert len(parts) == 1 and dataset_bytes(parts[0]) == dataset_bytes(data)
        got, sent = (pydicom.dcmread(io.BytesIO(b), stop_before_pixels=True).file_meta for b in (parts[0], data))
        assert got.TransferSyntaxUID == sent.TransferSyntaxUID
    # another township's user does not see it
    other = client(platform.gateway_url, login("doctor_b"))
    assert other.search_for_studies(search_filters={"PatientID": pushed["patient_id"]}) == []


def _find(port: int, ae_title: str, model: Any, identifier: Dataset) -> list[Dataset]:
    assoc = _scu(ae_title, model).associate("127.0.0.1", port, ae_title=ARCHIVE_AE)
    assert assoc.is_established
    out, statuses = [], []
    try:
        for status, ds in assoc.send_c_find(identifier, model):
            statuses.append(int(status.Status))
            if status.Status == 0xFF00:
                out.append(ds)
    finally:
        assoc.release()
    assert statuses[-1] == 0x0000, [hex(s) for s in statuses]
    return out


def test_c_find_study_root_and_patient_root(listener, pushed) -> None:
    q = Dataset()
    q.QueryRetrieveLevel, q.PatientID = "STUDY", pushed["patient_id"]
    q.StudyInstanceUID = q.PatientName = q.ModalitiesInStudy = q.NumberOfStudyRelatedInstances = ""
    found = _find(listener, "CG_CT", StudyRootQueryRetrieveInformationModelFind, q)
    assert len(found) == 1
    assert found[0].StudyInstanceUID == pushed["study"] and str(found[0].PatientName) == "Dimse^Test"
    assert set(found[0].ModalitiesInStudy) == {"CT", "MR", "OT"} and int(found[0].NumberOfStudyRelatedInstances) == 3

    series = Dataset()
    series.QueryRetrieveLevel, series.StudyInstanceUID = "SERIES", pushed["study"]
    series.SeriesInstanceUID = series.Modality = ""
    found = _find(listener, "CG_CT", StudyRootQueryRetrieveInformationModelFind, series)
    assert sorted(ds.Modality for ds in found) == ["CT", "MR", "OT"]

    image = Dataset()
    image.QueryRetrieveLevel, image.StudyInstanceUID = "IMAGE", pushed["study"]
    image.SeriesInstanceUID = pushed["sent"][next(iter(pushed["sent"]))][0]
    image.SOPInstanceUID = ""
    found = _find(listener, "CG_CT", StudyRootQueryRetrieveInformationModelFind, image)
    assert [ds.SOPInstanceUID for ds in found] == [next(iter(pushed["sent"]))]

    patient = Dataset()
    patient.QueryRetrieveLevel, patient.PatientID, patient.PatientName = "PATIENT", pushed["patient_id"], ""
    found = _find(listener, "CG_CT", PatientRootQueryRetrieveInformationModelFind, patient)
    assert [(ds.PatientID, str(ds.PatientName)) for ds in found] == [(pushed["patient_id"], "Dimse^Test")]

    # an AE of another facility finds nothing
    assert _find(listener, "LJ_DR", StudyRootQueryRetrieveInformationModelFind, q) == []


def test_c_get_returns_the_instances(listener, pushed) -> None:
    received: dict[str, bytes] = {}

    def on_store(event: Any) -> int:
        received[str(event.request.AffectedSOPInstanceUID)] = event.encoded_dataset(include_meta=True)
        return 0x0000

    contexts = {(str(pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID),
                 str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID))
                for p in pushed["paths"]}
    ae = _scu("CG_CT", StudyRootQueryRetrieveInformationModelGet, *((s, [t]) for s, t in sorted(contexts)))
    roles = [build_role(sop, scp_role=True) for sop, _ in sorted(contexts)]
    assoc = ae.associate("127.0.0.1", listener, ae_title=ARCHIVE_AE, ext_neg=roles,
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert assoc.is_established
    q = Dataset()
    q.QueryRetrieveLevel, q.StudyInstanceUID = "STUDY", pushed["study"]
    try:
        statuses = [int(s.Status) for s, _ in assoc.send_c_get(q, StudyRootQueryRetrieveInformationModelGet)]
    finally:
        assoc.release()
    assert statuses[-1] == 0x0000, [hex(s) for s in statuses]
    assert set(received) == set(pushed["sent"])
    for sop, (_, data) in pushed["sent"].items():
        assert pydicom.dcmread(io.BytesIO(received[sop])).PixelData == pydicom.dcmread(io.BytesIO(data)).PixelData


_register = register_ae


def test_c_move_to_a_registered_destination(listener, pushed, seeded) -> None:
    received: dict[str, bytes] = {}

    def on_store(event: Any) -> int:
        received[str(event.request.AffectedSOPInstanceUID)] = event.encoded_dataset(include_meta=True)
        return 0x0000

    dest_port = free_port()
    dest = AE(ae_title="TEST_DEST")
    for cx in AllStoragePresentationContexts:
        dest.add_supported_context(str(cx.abstract_syntax), ALL_TRANSFER_SYNTAXES)
    server = dest.start_server(("127.0.0.1", dest_port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        _register(seeded.database_url, "TEST_DEST", "QH-CG", dest_port)
        q = Dataset()
        q.QueryRetrieveLevel, q.StudyInstanceUID = "STUDY", pushed["study"]
        assoc = _scu("CG_CT", StudyRootQueryRetrieveInformationModelMove).associate(
            "127.0.0.1", listener, ae_title=ARCHIVE_AE)
        assert assoc.is_established
        try:
            statuses = [int(s.Status) for s, _ in assoc.send_c_move(
                q, "TEST_DEST", StudyRootQueryRetrieveInformationModelMove)]
            unknown = [int(s.Status) for s, _ in assoc.send_c_move(
                q, "NOWHERE", StudyRootQueryRetrieveInformationModelMove)]
        finally:
            assoc.release()
    finally:
        if server is not None:
            server.shutdown()
    assert statuses[-1] == 0x0000, [hex(s) for s in statuses]
    assert unknown == [0xA801]
    assert set(received) == set(pushed["sent"])
    for sop, (_, data) in pushed["sent"].items():
        assert dataset_bytes(received[sop]) == dataset_bytes(data)


DCMTK = shutil.which("storescu") and shutil.which("findscu")


def test_dcmtk_storescu_and_findscu(platform, login, listener, tmp_path) -> None:
    assert DCMTK, "DCMTK (storescu, findscu) is missing: infra/local/system-deps.sh python installs it"
    study, patient_id = uid(), f"PID-DIMSE-{uuid.uuid4().hex[:8]}"
    path = fresh_copy("CT_small.dcm", study, patient_id, tmp_path)
    env = {**os.environ, "LC_ALL": "C"}
    r = subprocess.run(["storescu", "-aet", "LJ_DR", "-aec", ARCHIVE_AE, "127.0.0.1", str(listener), str(path)],
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    c = client(platform.gateway_url, login("tech_b"))  # 李家镇: LJ_DR's facility
    found = c.search_for_studies(search_filters={"PatientID": patient_id})
    assert [s["0020000D"]["Value"][0] for s in found] == [study]
    r = subprocess.run(["findscu", "-S", "-aet", "LJ_DR", "-aec", ARCHIVE_AE, "-k", "QueryRetrieveLevel=STUDY",
                        "-k", f"PatientID={patient_id}", "-k", "StudyInstanceUID", "127.0.0.1", str(listener)],
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert study in r.stdout + r.stderr


def test_ae_title_admin_api_controls_who_may_associate(platform, login, listener) -> None:
    import httpx

    from tests.conftest import auth

    base = f"{platform.gateway_url}/api/imaging/ae-titles"
    admin = auth(login("hospital_admin"))  # facility admin of 清河县人民医院
    title = f"QH_WS{uuid.uuid4().hex[:6].upper()}"
    entry = {"ae_title": title, "host": "127.0.0.1", "port": 11113, "description": "reading WS"}
    r = httpx.put(base, json=entry, headers=admin, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True and r.json()["port"] == 11113
    listed = [a["ae_title"] for a in httpx.get(base, headers=admin, timeout=10).json()]
    assert title in listed and "CG_CT" not in listed  # its own facility's only
    # another facility's AE title (also to deactivate it), a port without a host, a bad title, a technician
    assert httpx.put(base, json={"ae_title": "CG_CT", "active": False}, headers=admin, timeout=10).status_code == 409
    assert httpx.put(base, json={"ae_title": title, "port": 1}, headers=admin, timeout=10).status_code == 422
    assert httpx.put(base, json={"ae_title": "A\\B"}, headers=admin, timeout=10).status_code == 422
    assert httpx.get(base, headers=auth(login("tech_a")), timeout=10).status_code == 403

    assoc = _scu(title, Verification).associate("127.0.0.1", listener, ae_title=ARCHIVE_AE)
    assert assoc.is_established and assoc.send_c_echo().Status == 0
    assoc.release()
    r = httpx.put(base, json={**entry, "active": False}, headers=admin, timeout=10)
    assert r.status_code == 200 and r.json()["active"] is False
    assoc = _scu(title, Verification).associate("127.0.0.1", listener, ae_title=ARCHIVE_AE)
    assert assoc.is_rejected
    # CG_CT is untouched by the refused deactivation
    assoc = _scu("CG_CT", Verification).associate("127.0.0.1", listener, ae_title=ARCHIVE_AE)
    assert assoc.is_established
    assoc.release()


def test_c_get_decompresses_for_a_peer_that_takes_only_uncompressed(listener, pushed) -> None:
    received: dict[str, Dataset] = {}

    def on_store(event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        received[str(event.request.AffectedSOPInstanceUID)] = ds
        return 0x0000

    jpeg = next(p for p in pushed["paths"] if p.name == "SC_rgb_jpeg_gdcm.dcm")
    source = pydicom.dcmread(jpeg)
    sop_class = str(source.SOPClassUID)
    ae = _scu("CG_CT", StudyRootQueryRetrieveInformationModelGet, (sop_class, ["1.2.840.10008.1.2.1"]))
    assoc = ae.associate("127.0.0.1", listener, ae_title=ARCHIVE_AE, ext_neg=[build_role(sop_class, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert assoc.is_established
    q = Dataset()
    q.QueryRetrieveLevel, q.StudyInstanceUID = "IMAGE", pushed["study"]
    q.SeriesInstanceUID, q.SOPInstanceUID = str(source.SeriesInstanceUID), str(source.SOPInstanceUID)
    try:
        statuses = [int(s.Status) for s, _ in assoc.send_c_get(q, StudyRootQueryRetrieveInformationModelGet)]
    finally:
        assoc.release()
    assert statuses[-1] == 0x0000, [hex(s) for s in statuses]
    assert list(received) == [str(source.SOPInstanceUID)], (statuses, list(received))
    got = received[str(source.SOPInstanceUID)]
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert (got.pixel_array == source.pixel_array).all()


def test_retrieves_and_finds_that_match_nothing_or_are_malformed(listener) -> None:
    nothing = Dataset()
    nothing.QueryRetrieveLevel, nothing.StudyInstanceUID = "STUDY", uid()
    ae = _scu("CG_CT", StudyRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelMove,
              StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", listener, ae_title=ARCHIVE_AE)
    assert assoc.is_established
    try:
        got = [int(s.Status) for s, _ in assoc.send_c_get(nothing, StudyRootQueryRetrieveInformationModelGet)]
        no_level = Dataset()
        no_level.PatientID = "X"
        bad = [int(s.Status) for s, _ in assoc.send_c_find(no_level, StudyRootQueryRetrieveInformationModelFind)]
        moved = [int(s.Status) for s, _ in assoc.send_c_move(
            nothing, "CG_CT", StudyRootQueryRetrieveInformationModelMove)]
        no_key = Dataset()
        no_key.QueryRetrieveLevel = "SERIES"
        bad_get = [int(s.Status) for s, _ in assoc.send_c_get(no_key, StudyRootQueryRetrieveInformationModelGet)]
    finally:
        assoc.release()
    assert got == [0x0000]
    assert moved == [0xA801]  # CG_CT has no host/port: not a move destination
    assert bad == [0xA900] and bad_get == [0xA900]
