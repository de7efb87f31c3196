"""Every pixel-bearing file of pydicom's test set and of pydicom-data goes in by STOW-RS through the gateway
and comes back byte for byte by WADO-RS (read with dicomweb-client's own multipart decoder); its metadata
matches the file. Files that are not valid Part-10 instances are listed below with the reason and must fail
with that reason. Many test files share a SOP Instance UID (one image in several transfer syntaxes): they go
in rounds, and a later copy with other bytes replaces the earlier one with Warning Reason 0xB111 (HTTP 202).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pydicom
import pytest

from tests.imaging.imaging_support import (
    client,
    pixel_bearing_test_files,
    quiet_pydicom,
    rounds,
    sequence,
    sop_uid_of,
    stow,
    value,
)

quiet_pydicom()

# The test files that are not storable instances, with the reason the archive must give (ErrorComment) and
# the PS3.18 Failure Reason.
NOT_STORABLE: dict[str, tuple[int, str]] = {
    "OT-PAL-8-face.dcm": (0xC000, "not a DICOM Part-10 file"),          # a bare data set: no preamble, no DICM
    "no_meta.dcm": (0xC000, "not a DICOM Part-10 file"),                # the same
    "meta_missing_tsyntax.dcm": (0xC000, "no Transfer Syntax UID"),     # File Meta without (0002,0010)
    "MR_truncated.dcm": (0xC000, "truncated file"),                     # pixel data cut short
    "emri_small_jpeg_2k_lossless_too_short.dcm": (0xC000, "truncated file"),  # no sequence delimiter
    "bad_sequence.dcm": (0xA900, "invalid SOP Instance UID"),          # UIDs are hex digests
    "nested_priv_SQ.dcm": (0xA900, "missing SOP Class UID"),           # a fragment, no UIDs at all
    "JPEGLSNearLossless_08.dcm": (0xA900, "missing Study Instance UID"),
    "JPEGLSNearLossless_16.dcm": (0xA900, "missing Study Instance UID"),
    "SC_rgb_jls_lossy_line.dcm": (0xA900, "missing Study Instance UID"),
    "SC_rgb_jls_lossy_sample.dcm": (0xA900, "missing Study Instance UID"),
}
BATCH = 40
ANY_TS = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def _batches(paths: list[Path]) -> list[list[Path]]:
    return [paths[i:i + BATCH] for i in range(0, len(paths), BATCH)]


def _retrieve_raw(c: Any, study: str, series: str, sop: str) -> list[bytes]:
    url = f"{c.base_url}/studies/{study}/series/{series}/instances/{sop}"
    response = c._http_get(url, headers={"Accept": ANY_TS})
    return list(c._decode_multipart_message(response, stream=False))


@pytest.fixture(scope="module")
def stow_results(platform, login) -> dict[str, Any]:
    """STOW every file (in rounds of unique SOP Instance UIDs); after each round, WADO-RS each stored one."""
    token = login("tech_a")
    c = client(platform.gateway_url, token)
    files = pixel_bearing_test_files()
    seen_sha: dict[str, str] = {}
    out: dict[str, Any] = {"files": files, "stored": {}, "failed": {}, "replaced": [], "statuses": [],
                           "identical": {}, "metadata": {}}
    for round_files in rounds(files, sop_uid_of):
        for batch in _batches(round_files):
            r = stow(platform.gateway_url, token, [p.read_bytes() for p in batch])
            assert r.status_code in (200, 202, 409), r.text
            assert r.headers["content-type"].startswith("application/dicom+json")
            body = r.json()
            out["statuses"].append(r.status_code)
            by_sop = {value(i, "00081155"): i for i in sequence(body, "00081199")}
            for item in sequence(body, "00081198"):
                part = int(value(item, "00000902").split(":")[0].removeprefix("part "))
                out["failed"][batch[part - 1].name] = (value(item, "00081197"), value(item, "00000902"))
            for path in batch:
                if path.name in out["failed"]:
                    continue
                item = by_sop[sop_uid_of(path)]
                sha = hashlib.sha256(path.read_bytes()).hexdigest()
                sop = value(item, "00081155")
                if sop in seen_sha and seen_sha[sop] != sha:
                    out["replaced"].append((path.name, value(item, "00081196"), r.status_code))
                seen_sha[sop] = sha
                study, series = value(item, "00081190").split("/studies/")[1].split("/instances/")[0].split(
                    "/series/")
                out["stored"][path.name] = (study, series, sop)
        for path in round_files:  # before a later round replaces them
            if path.name in out["stored"]:
                study, series, sop = out["stored"][path.name]
                out["identical"][path.name] = _retrieve_raw(c, study, series, sop) == [path.read_bytes()]
                out["metadata"][path.name] = c.retrieve_instance_metadata(study, series, sop)
    return out


def test_every_pixel_file_is_accounted_for(stow_results) -> None:
    names = [p.name for p in stow_results["files"]]
    assert len(names) >= 150, "pydicom-data is not installed?"
    assert set(stow_results["stored"]) | set(stow_results["failed"]) == set(names)
    assert not set(stow_results["stored"]) & set(stow_results["failed"])


def test_files_that_are_not_instances_fail_with_their_reason(stow_results) -> None:
    failed = stow_results["failed"]
    assert set(failed) == set(NOT_STORABLE), "a file failed that should not have, or the other way round"
    for name, (reason, words) in NOT_STORABLE.items():
        code, comment = failed[name]
        assert code == reason and words in comment, (name, hex(code), comment)


def test_every_stored_file_comes_back_byte_identical(stow_results) -> None:
    different = [name for name, same in stow_results["identical"].items() if not same]
    assert not different, f"WADO-RS did not return the original bytes of {different}"
    assert len(stow_results["identical"]) == len(stow_results["stored"])


def test_replaced_copies_carry_the_warning(stow_results) -> None:
    assert len(stow_results["replaced"]) >= 20  # the test set has many images in several transfer syntaxes
    for name, warning, status in stow_results["replaced"]:
        assert warning == 0xB111 and status == 202, name


def test_metadata_matches_the_files(stow_results) -> None:
    for path in stow_results["files"]:
        if path.name not in stow_results["metadata"]:
            continue
        meta = stow_results["metadata"][path.name]
        ds = pydicom.dcmread(path, defer_size=1024)
        expected = {f"{t:08X}" for t in ds.keys() if t.element != 0 and t.group not in (0x0002,)}
        assert expected == set(meta), (path.name, expected ^ set(meta))
        for keyword in ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "Rows",
                        "Columns", "BitsAllocated", "PatientID", "Modality"):
            element = ds.data_element(keyword) if keyword in ds else None
            if element is None or element.value in (None, ""):
                continue
            assert meta[f"{element.tag:08X}"]["Value"][0] == element.to_json_dict(None, 0)["Value"][0], (
                path.name, keyword)
        pixel = meta.get("7FE00010")
        if pixel is not None:
            assert pixel["BulkDataURI"].endswith("/bulkdata/7FE00010") and "Value" not in pixel
