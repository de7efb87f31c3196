"""WADO-RS with dicomweb-client: transfer-syntax negotiation and transcoding (406 when impossible), study and
series retrieve, metadata at every level, frames (byte ranges, as stored, decoded), bulk data, the study
ZIP and WADO-URI. Test instances are copies of pydicom's files under new UIDs (pixel data untouched)."""

from __future__ import annotations

import io
import zipfile
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import get_frame

from tests.conftest import auth
from tests.imaging.imaging_support import client, make_instance, quiet_pydicom, read, stow, uid

quiet_pydicom()
EXPLICIT_LE, RLE, JPEG_BASELINE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.50"
SOURCES = {
    "ct": "CT_small.dcm",                       # Explicit VR Little Endian
    "j2k": "JPEG2000.dcm",                      # JPEG 2000
    "jpeg": "SC_rgb_jpeg_dcmtk.dcm",            # JPEG baseline, YBR_FULL
    "rle": "emri_small_RLE.dcm",                # RLE, 10 frames
    "bigendian": "MR_small_bigendian.dcm",      # Explicit VR Big Endian
    "deflate": "image_dfl.dcm",                 # Deflated Explicit VR Little Endian
    "jpegls": "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "ybr": "examples_ybr_color.dcm",            # JPEG baseline YBR_FULL_422, 30 frames
}


def fresh_copy(name: str, study: str, series: str) -> bytes:
    """A pydicom test file under new SOP/Study/Series UIDs; the pixel data stays as it was encoded."""
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def study(platform, login) -> dict[str, Any]:
    token = login("tech_a")
    study_uid, series_uid = uid(), uid()
    files = {key: fresh_copy(name, study_uid, series_uid) for key, name in SOURCES.items()}
    native3 = make_instance(study=study_uid, series=series_uid, frames=3, rows=16, columns=12)
    doc = read(make_instance(study=study_uid, series=series_uid))
    doc.add_new(0x00420011, "OB", b"%PDF-1.4 report " * 200)  # an encapsulated-document-sized OB value
    buf = io.BytesIO()
    doc.save_as(buf)
    files["native3"], files["doc"] = native3, buf.getvalue()
    r = stow(platform.gateway_url, token, list(files.values()), study=study_uid)
    assert r.status_code == 200, r.text
    return {"uid": study_uid, "series": series_uid, "files": files, "token": token,
            "sop": {k: str(read(v).SOPInstanceUID) for k, v in files.items()}}


def _c(platform: Any, study: dict[str, Any], direct: bool = False) -> Any:
    return client(platform.service_url("imaging") if direct else platform.gateway_url, study["token"])


def _instance(c: Any, study: dict[str, Any], key: str, ts: str | None) -> pydicom.Dataset:
    media = ("application/dicom",) if ts is None else (("application/dicom", ts),)
    return c.retrieve_instance(study["uid"], study["series"], study["sop"][key], media_types=media)


@pytest.mark.parametrize("key", ["j2k", "jpeg", "rle", "bigendian", "deflate", "jpegls", "ct"])
def test_default_retrieve_is_explicit_little_endian_with_the_same_pixels(platform, study, key) -> None:
    got = _instance(_c(platform, study), study, key, None)
    assert got.file_meta.TransferSyntaxUID == EXPLICIT_LE
    original = read(study["files"][key])
    assert got.SOPInstanceUID == original.SOPInstanceUID  # transcoding keeps the UIDs
    assert np.array_equal(got.pixel_array, original.pixel_array)


def test_transcode_to_rle_and_406_for_a_lossy_target(platform, study) -> None:
    c = _c(platform, study, direct=True)
    got = _instance(c, study, "ct", RLE)
    assert got.file_meta.TransferSyntaxUID == RLE
    assert np.array_equal(got.pixel_array, read(study["files"]["ct"]).pixel_array)
    url = f"{platform.gateway_url}/dicom-web/studies/{study['uid']}/series/{study['series']}/instances/" \
          f"{study['sop']['ct']}"
    jpeg = f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_BASELINE}'
    r = httpx.get(url, headers={**auth(study["token"]), "Accept": jpeg})
    assert r.status_code == 406 and "transfer-syntax=*" in r.json()["detail"]
    r = httpx.get(url, headers={**auth(study["token"]), "Accept": "application/dicom+json"})
    assert r.status_code == 406


def test_study_and_series_retrieve(platform, study) -> None:
    c = _c(platform, study)
    everything = c.retrieve_study(study["uid"])
    assert sorted(ds.SOPInstanceUID for ds in everything) == sorted(study["sop"].values())
    assert {ds.file_meta.TransferSyntaxUID for ds in everything} == {EXPLICIT_LE}
    as_stored = c.retrieve_series(study["uid"], study["series"], media_types=(("application/dicom", "*"),))
    originals = {read(data).SOPInstanceUID: data for data in study["files"].values()}
    for ds in as_stored:
        buf = io.BytesIO()
        ds.save_as(buf)
        assert ds.file_meta.TransferSyntaxUID == read(originals[ds.SOPInstanceUID]).file_meta.TransferSyntaxUID


def test_metadata_at_every_level(platform, study) -> None:
    for direct in (False, True):
        c = _c(platform, study, direct)
        assert len(c.retrieve_study_metadata(study["uid"])) == len(study["files"])
        assert len(c.retrieve_series_metadata(study["uid"], study["series"])) == len(study["files"])
        meta = c.retrieve_instance_metadata(study["uid"], study["series"], study["sop"]["rle"])
        assert meta["00280008"]["Value"] == [10] and "BulkDataURI" in meta["7FE00010"]


def _frames(platform: Any, study: dict[str, Any], key: str, numbers: str, accept: str | None) -> httpx.Response:
    url = (f"{platform.gateway_url}/dicom-web/studies/{study['uid']}/series/{study['series']}/instances/"
           f"{study['sop'][key]}/frames/{numbers}")
    headers = auth(study["token"]) | ({"Accept": accept} if accept else {})
    return httpx.get(url, headers=headers)


def _parts(c: Any, response: httpx.Response) -> list[bytes]:
    class Wrapped:  # dicomweb-client's decoder reads a requests-like response
        headers = response.headers
        content = response.content

        def __enter__(self) -> Wrapped:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    return list(c._decode_multipart_message(Wrapped(), stream=False))


def test_frames(platform, study) -> None:
    c = _c(platform, study)
    native = read(study["files"]["native3"])
    got = c.retrieve_instance_frames(study["uid"], study["series"], study["sop"]["native3"], frame_numbers=[3, 1])
    size = 16 * 12 * 2
    assert got == [native.PixelData[2 * size:3 * size], native.PixelData[:size]]  # byte ranges of the object
    rle = read(study["files"]["rle"])
    decoded = c.retrieve_instance_frames(study["uid"], study["series"], study["sop"]["rle"], frame_numbers=[2, 5],
                                         media_types=("application/octet-stream",))
    assert decoded == [rle.pixel_array[1].astype("<u2").tobytes(), rle.pixel_array[4].astype("<u2").tobytes()]
    stored = c.retrieve_instance_frames(study["uid"], study["series"], study["sop"]["rle"], frame_numbers=[5],
                                        media_types=(("image/dicom-rle", RLE),))
    assert stored == [get_frame(rle.PixelData, 4, number_of_frames=10)]
    r = _frames(platform, study, "ybr", "30", 'multipart/related; type="application/octet-stream"; transfer-syntax=*')
    assert r.status_code == 200 and "image/jpeg" in r.text[:300]
    ybr = read(study["files"]["ybr"])
    assert _parts(c, r) == [get_frame(ybr.PixelData, 29, number_of_frames=30)]
    deflated = read(study["files"]["deflate"])  # the dataset is deflated: frames need inflating first
    inflated = c.retrieve_instance_frames(study["uid"], study["series"], study["sop"]["deflate"], frame_numbers=[1],
                                          media_types=("application/octet-stream",))
    dtype = deflated.pixel_array.dtype.newbyteorder("<")
    assert inflated == [deflated.pixel_array.astype(dtype).tobytes()]


def test_frame_errors(platform, study) -> None:
    assert _frames(platform, study, "rle", "11", None).status_code == 404
    assert _frames(platform, study, "rle", "0", None).status_code == 400
    assert _frames(platform, study, "rle", "x", None).status_code == 400
    assert _frames(platform, study, "doc", "1", 'multipart/related; type="image/jpeg"').status_code == 406


def test_bulk_data(platform, study) -> None:
    c = _c(platform, study)
    meta = c.retrieve_instance_metadata(study["uid"], study["series"], study["sop"]["doc"])
    uri = urlsplit(meta["00420011"]["BulkDataURI"])
    fixed = f"{platform.gateway_url}{uri.path}"  # dicomweb-client sends Host without the port
    assert c.retrieve_bulkdata(fixed) == [b"%PDF-1.4 report " * 200]
    pixel = c.retrieve_bulkdata(f"{platform.gateway_url}{urlsplit(meta['7FE00010']['BulkDataURI']).path}")
    assert pixel == [read(study["files"]["doc"]).PixelData]


def test_study_zip(platform, study) -> None:
    r = httpx.get(f"{platform.gateway_url}/api/imaging/studies/{study['uid']}/archive", headers=auth(study["token"]))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        members = {name.rsplit("/", 1)[-1].removesuffix(".dcm"): zf.read(name) for name in zf.namelist()}
    assert members == {study["sop"][k]: v for k, v in study["files"].items()}


def test_wado_uri(platform, study) -> None:
    base = f"{platform.gateway_url}/wado"
    params = {"requestType": "WADO", "studyUID": study["uid"], "seriesUID": study["series"],
              "objectUID": study["sop"]["j2k"], "contentType": "application/dicom"}
    r = httpx.get(base, params=params, headers=auth(study["token"]))
    assert r.status_code == 200 and r.content == study["files"]["j2k"]
    r = httpx.get(base, params={**params, "transferSyntax": EXPLICIT_LE}, headers=auth(study["token"]))
    assert read(r.content).file_meta.TransferSyntaxUID == EXPLICIT_LE
    no_type = {k: v for k, v in params.items() if k != "contentType"}
    r = httpx.get(base, params=no_type, headers=auth(study["token"]))  # rendered JPEG: test_rendered.py
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    encoded = f"{base}?requestType=WADO&studyUID={study['uid']}&seriesUID={study['series']}" \
              f"&objectUID={study['sop']['j2k']}&contentType=image%2Fjpeg"
    r = httpx.get(encoded, headers=auth(study["token"]))
    assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
    r = httpx.get(base, params={**params, "contentType": "image/gif"}, headers=auth(study["token"]))
    assert r.status_code == 406 and "image/gif" in r.json()["detail"]
    assert httpx.get(base, params={**params, "requestType": "X"}, headers=auth(study["token"])).status_code == 400
