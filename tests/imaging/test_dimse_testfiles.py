"""Every pixel-bearing file of pydicom's test set and pydicom-data goes in by C-STORE (pynetdicom as SCU,
sending the file's own encoded data set unchanged in a presentation context of the file's own transfer
syntax) and comes back byte for byte through WADO-RS at the gateway, and renders.

This mirrors test_dicomweb_stow.py for DIMSE. Files sharing a SOP Instance UID (one image in several
transfer syntaxes) go in rounds; within a round the files are spread over a few parallel associations, each
sending many files. A later copy with other bytes replaces the earlier one (0xB111), so every file is checked
(retrieved and rendered) in its own round. The same instances may already be in the archive from the STOW
test of this session (same facility, same study and series): those answer 0xB111 as well.

Differences from STOW, because DIMSE carries a data set and not a Part-10 file: a bare data set without File
Meta Information (``OT-PAL-8-face.dcm``) is sent in Implicit VR Little Endian and stored; files without a
SOP Class UID cannot be offered at all (a C-STORE names its SOP class) and are listed as not sendable.
"""

from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom import _config
from pynetdicom.dsutils import split_dataset

from tests.conftest import auth
from tests.imaging.dimse_support import ANY_TS, ARCHIVE_AE, dataset_bytes, listener, scu
from tests.imaging.imaging_support import pixel_bearing_test_files, quiet_pydicom, rounds
from tests.imaging.test_rendered import UNDECODABLE

__all__ = ["listener"]  # the module-scoped fixture, imported for pytest

quiet_pydicom()

# No SOP Class UID anywhere: a C-STORE request cannot name the SOP class, so an SCU cannot send them.
NOT_SENDABLE = {"no_meta.dcm", "meta_missing_tsyntax.dcm", "nested_priv_SQ.dcm"}
# Sent, and refused by the archive with the same reason as by STOW-RS (test_dicomweb_stow.NOT_STORABLE).
REFUSED: dict[str, int] = {
    "MR_truncated.dcm": 0xC000,                                  # pixel data cut short
    "emri_small_jpeg_2k_lossless_too_short.dcm": 0xC000,         # no sequence delimiter
    "bad_sequence.dcm": 0xA900,                                  # UIDs are hex digests
    "JPEGLSNearLossless_08.dcm": 0xA900,                         # no Study Instance UID
    "JPEGLSNearLossless_16.dcm": 0xA900,
    "SC_rgb_jls_lossy_line.dcm": 0xA900,
    "SC_rgb_jls_lossy_sample.dcm": 0xA900,
}
ASSOCIATIONS = 3     # parallel associations per round
HTTP_WORKERS = 4
MAX_CONTEXTS = 120   # an association proposes at most 128 presentation contexts


@dataclass
class Sendable:
    path: Path           # the file as sent (a bare data set is wrapped in File Meta Information first)
    name: str
    sop_class: str
    sop_instance: str
    transfer_syntax: str
    study: str
    series: str
    dataset: bytes       # the encoded data set as in the original file
    size: tuple[int, int]  # Columns, Rows


@dataclass
class Results:
    sendable: list[Sendable] = field(default_factory=list)
    not_sendable: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    identical: dict[str, bool] = field(default_factory=dict)
    syntax_kept: dict[str, bool] = field(default_factory=dict)
    rendered: dict[str, Any] = field(default_factory=dict)
    associations: int = 0


def _wrap_bare(path: Path, directory: Path) -> Path | None:
    """A bare data set (no preamble, no DICM) as a Part-10 file in Implicit VR Little Endian, its data set
    bytes unchanged; None when it has no SOP class or instance to name."""
    ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    if ds.original_encoding != (True, True) or not ds.get("SOPClassUID") or not ds.get("SOPInstanceUID"):
        return None
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buf = DicomBytesIO()
    buf.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buf, meta, enforce_standard=True)
    out = directory / path.name
    out.write_bytes(buf.getvalue() + path.read_bytes())
    return out


def _sendable(path: Path, directory: Path) -> Sendable | None:
    try:
        meta, offset = split_dataset(path)
        sent = path
    except Exception:  # not Part 10
        wrapped = _wrap_bare(path, directory)
        if wrapped is None:
            return None
        meta, offset = split_dataset(wrapped)
        sent = wrapped
    sop_class, sop = str(meta.get("MediaStorageSOPClassUID", "")), str(meta.get("MediaStorageSOPInstanceUID", ""))
    ts = str(meta.get("TransferSyntaxUID", ""))
    if not (sop_class and sop and ts):
        return None
    ds = pydicom.dcmread(sent, stop_before_pixels=True, force=True)
    sop = str(ds.get("SOPInstanceUID", "") or sop)  # the archive indexes the data set's UID (badVR.dcm differs)
    return Sendable(sent, path.name, sop_class, sop, ts, str(ds.get("StudyInstanceUID", "")),
                    str(ds.get("SeriesInstanceUID", "")), sent.read_bytes()[offset:],
                    (int(ds.get("Columns", 0) or 0), int(ds.get("Rows", 0) or 0)))


def _split(files: list[Sendable], parts: int) -> list[list[Sendable]]:
    """Spread a round over ``parts`` associations, each proposing at most MAX_CONTEXTS contexts."""
    chunks = [files[i::parts] for i in range(parts)]
    out = []
    for chunk in chunks:
        current: list[Sendable] = []
        pairs: set[tuple[str, str]] = set()
        for f in chunk:
            pair = (f.sop_class, f.transfer_syntax)
            if pair not in pairs and len(pairs) >= MAX_CONTEXTS:
                out.append(current)
                current, pairs = [], set()
            current.append(f)
            pairs.add(pair)
        if current:
            out.append(current)
    return out


def _send(port: int, files: list[Sendable]) -> dict[str, int]:
    """One association for all of ``files``: one presentation context per (SOP class, transfer syntax)."""
    pairs = sorted({(f.sop_class, f.transfer_syntax) for f in files})
    assoc = scu("CG_CT", *((sop, [ts]) for sop, ts in pairs)).associate("127.0.0.1", port, ae_title=ARCHIVE_AE)
    assert assoc.is_established
    accepted = {(str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in assoc.accepted_contexts}
    assert accepted == set(pairs), f"refused contexts: {set(pairs) - accepted}"
    out = {}
    try:
        for i, f in enumerate(files, start=1):
            status = assoc.send_c_store(f.path, msg_id=i)
            out[f.name] = int(status.Status) if "Status" in status else -1
    finally:
        assoc.release()
    return out


def _multipart(r: httpx.Response) -> list[bytes]:
    head = f"Content-Type: {r.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + r.content)
    return [bytes(p.get_payload(decode=True)) for p in message.iter_parts()]


def _check(client: httpx.Client, gateway: str, service: str, token: str, f: Sendable) -> tuple[bool, bool, Any]:
    """(data set bytes identical, transfer syntax kept, rendered size or (status, detail))."""
    path = f"/dicom-web/studies/{f.study}/series/{f.series}/instances/{f.sop_instance}"
    r = client.get(gateway + path, headers={**auth(token), "Accept": ANY_TS})
    assert r.status_code == 200, (f.name, r.status_code, r.text[:300])
    parts = _multipart(r)
    identical = len(parts) == 1 and dataset_bytes(parts[0]) == f.dataset
    kept = len(parts) == 1 and str(pydicom.dcmread(io.BytesIO(parts[0]), stop_before_pixels=True)
                                   .file_meta.TransferSyntaxUID) == f.transfer_syntax
    r = client.get(service + path + "/rendered", headers={**auth(token), "Accept": "image/jpeg"})
    if r.status_code != 200:
        return identical, kept, (r.status_code, r.text[:200])
    image = Image.open(io.BytesIO(r.content))
    image.load()
    return identical, kept, (image.format, image.size)


@pytest.fixture(scope="module")
def chunked_send() -> Iterator[None]:
    """pynetdicom sends a file's encoded data set as it is in the file (no decoding, no re-encoding)."""
    before = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        yield
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = before


@pytest.fixture(scope="module")
def results(platform, login, listener, chunked_send, tmp_path_factory) -> Results:
    directory = tmp_path_factory.mktemp("bare")
    token = login("tech_a")  # 城关镇: CG_CT's facility
    out = Results()
    # plus the deflated image_dfl.dcm, whose pixel data tag is inside the deflated stream (as test_rendered)
    for path in [*pixel_bearing_test_files(), Path(get_testdata_file("image_dfl.dcm"))]:
        item = _sendable(path, directory)
        if item is None:
            out.not_sendable.append(path.name)
        else:
            out.sendable.append(item)
    by_name = {f.name: f for f in out.sendable}
    gateway, service = platform.gateway_url, platform.service_url("imaging")
    with ThreadPoolExecutor(max_workers=max(ASSOCIATIONS, HTTP_WORKERS)) as pool, \
            httpx.Client(timeout=120) as client:
        for round_files in rounds(out.sendable, lambda f: f.sop_instance):
            groups = _split(round_files, min(ASSOCIATIONS, len(round_files)))
            out.associations += len(groups)
            for statuses in pool.map(lambda g: _send(listener, g), groups):
                out.statuses.update(statuses)
            stored = [f for f in round_files if out.statuses[f.name] in (0x0000, 0xB111)]
            checks = pool.map(lambda f: _check(client, gateway, service, token, f), stored)
            for f, (identical, kept, rendered) in zip(stored, checks, strict=True):
                out.identical[f.name], out.syntax_kept[f.name], out.rendered[f.name] = identical, kept, rendered
    assert set(by_name) == set(out.statuses)
    return out


def test_every_pixel_file_is_sent_or_known_not_sendable(results) -> None:
    names = {p.name for p in pixel_bearing_test_files()} | {"image_dfl.dcm"}
    assert len(names) >= 150, "pydicom-data is not installed?"
    assert set(results.not_sendable) == NOT_SENDABLE
    assert {f.name for f in results.sendable} | NOT_SENDABLE == names
    # far fewer associations than files: each association carries many C-STOREs
    assert results.associations < len(results.sendable) / 2


def test_every_storage_sop_class_and_transfer_syntax_is_accepted(results) -> None:
    """No file is refused for its SOP class or transfer syntax (0x0122 or a rejected context would show)."""
    kinds = defaultdict(set)
    for f in results.sendable:
        kinds[f.transfer_syntax].add(f.sop_class)
    # implicit, explicit, big endian, deflate, JPEG baseline/extended/lossless SV1, JPEG-LS lossless/near,
    # JPEG 2000 lossless/lossy, RLE
    assert set(kinds) >= {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                          "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                          "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
                          "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5"}
    assert "1.2.840.10008.5.1.4.1.1.6" in {f.sop_class for f in results.sendable}  # retired US image storage


def test_refused_files_fail_with_the_reason_stow_gives(results) -> None:
    failed = {n: s for n, s in results.statuses.items() if s not in (0x0000, 0xB111)}
    assert failed == REFUSED, {n: hex(s) for n, s in failed.items()}


def test_every_stored_file_comes_back_byte_identical(results) -> None:
    stored = [n for n, s in results.statuses.items() if s in (0x0000, 0xB111)]
    assert len(stored) >= 140
    assert set(results.identical) == set(stored)
    different = sorted(n for n, same in results.identical.items() if not same)
    assert not different, f"WADO-RS did not return the data set sent by C-STORE for {different}"
    changed = sorted(n for n, kept in results.syntax_kept.items() if not kept)
    assert not changed, f"the stored transfer syntax is not the one negotiated for {changed}"
    assert "OT-PAL-8-face.dcm" in stored  # a bare data set: storable over DIMSE, unlike over STOW-RS


def test_repeated_instances_with_other_bytes_are_replaced_with_a_warning(results) -> None:
    seen: dict[str, str] = {}
    repeated = []
    for f in results.sendable:  # in send order: rounds keep the files' order within a SOP Instance UID
        digest = hashlib.sha256(f.dataset).hexdigest()
        if f.name in REFUSED:
            continue
        if f.sop_instance in seen and seen[f.sop_instance] != digest:
            repeated.append(f.name)
        seen[f.sop_instance] = digest
    assert len(repeated) >= 20
    assert all(results.statuses[n] == 0xB111 for n in repeated), {n: hex(results.statuses[n]) for n in repeated}


def test_every_stored_file_renders(results) -> None:
    sizes = {f.name: f.size for f in results.sendable}
    problems, refused = [], {}
    for name, got in results.rendered.items():
        if isinstance(got[0], int):
            status, detail = got
            if status == 422:
                refused[name] = detail
            else:
                problems.append((name, status, detail))
        elif got != ("JPEG", sizes[name]):
            problems.append((name, got, sizes[name]))
    assert not problems, problems
    assert set(refused) == set(UNDECODABLE), refused


def test_the_senders_first_choice_of_transfer_syntax_is_accepted(listener) -> None:
    """A modality offering [JPEG lossless, Explicit VR LE] in one context may send JPEG lossless as is; a C-GET
    requestor (proposing the SCP role) gets an uncompressed syntax the archive can always produce."""
    from pynetdicom import build_role

    sc, ct = "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.2"
    jpeg, explicit, implicit = "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
    assoc = scu("CG_CT", (sc, [jpeg, explicit]), (ct, [explicit, implicit])).associate(
        "127.0.0.1", listener, ae_title=ARCHIVE_AE)
    assert assoc.is_established
    try:
        accepted = {str(cx.abstract_syntax): str(cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
    finally:
        assoc.release()
    assert accepted == {sc: jpeg, ct: explicit}
    assoc = scu("CG_CT", "1.2.840.10008.5.1.4.1.2.2.3", (sc, [jpeg, explicit])).associate(
        "127.0.0.1", listener, ae_title=ARCHIVE_AE, ext_neg=[build_role(sc, scp_role=True)])
    assert assoc.is_established
    try:
        accepted = {str(cx.abstract_syntax): str(cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
    finally:
        assoc.release()
    assert accepted[sc] == explicit
