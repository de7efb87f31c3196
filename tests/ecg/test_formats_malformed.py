"""Corrupt and unsupported inputs raise FormatError with a useful reason (never a half-parsed record).

Damaged copies of the development set's files are written to tmp_path; the data directory is
$ECG_DATA_DIR (default <repo>/../shared/data/ecg) and its absence fails the tests.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

from services.ecg.formats import FormatError, read
from services.ecg.formats.scp import crc_ccitt

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def formats() -> Path:
    root = Path(os.environ.get("ECG_DATA_DIR") or REPO.parent / "shared" / "data" / "ecg").resolve()
    if not (root / "formats").is_dir():
        pytest.fail(f"ECG data directory {root} not found (set ECG_DATA_DIR to the shared ECG data set)")
    return root / "formats"


def damaged(tmp_path: Path, source: Path, data: bytes, name: str | None = None) -> Path:
    path = tmp_path / (name or source.name)
    path.write_bytes(data)
    return path


def test_scp_truncated_file(tmp_path: Path, formats: Path) -> None:
    src = formats / "scp/Example.scp"
    data = src.read_bytes()
    with pytest.raises(FormatError, match="truncated file: the record declares 34144 bytes, the file has 20000"):
        read(damaged(tmp_path, src, data[:20000]))
    # a consistent-looking record (size and CRC patched) whose section 6 runs past the end
    cut = bytearray(data[:20000])
    cut[2:6] = struct.pack("<I", 20000)
    cut[:2] = struct.pack("<H", crc_ccitt(bytes(cut[2:])))
    with pytest.raises(FormatError, match="truncated file: section 6 ends at byte 33902 of 20000"):
        read(damaged(tmp_path, src, bytes(cut)))


def test_scp_bad_crc(tmp_path: Path, formats: Path) -> None:
    src = formats / "scp/Example.scp"
    data = bytearray(src.read_bytes())
    data[10000] ^= 0x01  # inside section 6
    with pytest.raises(FormatError, match="bad CRC"):
        read(damaged(tmp_path, src, bytes(data)))


def test_wrong_format_forced(formats: Path) -> None:
    with pytest.raises(FormatError, match="wrong header: record size 0 is too small"):
        read(formats / "dicom/waveform_ecg.dcm", format="scp")
    with pytest.raises(FormatError, match="wrong header: magic"):
        read(formats / "scp/Example.scp", format="ishne")
    with pytest.raises(FormatError, match="not an HL7 aECG document"):
        read(formats / "philips_xml/129DYPRG_v1.03.xml", format="hl7_aecg")
    with pytest.raises(FormatError, match="unknown format 'gif'"):
        read(formats / "scp/Example.scp", format="gif")


def test_ishne_wrong_magic_truncated_bad_crc(tmp_path: Path, formats: Path) -> None:
    src = formats / "ishne/ECG_P28.01.ecg"
    data = src.read_bytes()
    wrong = damaged(tmp_path, src, b"ISHNE2.0" + data[8:], "wrong.ecg")
    with pytest.raises(FormatError, match="unknown format"):
        read(wrong)
    with pytest.raises(FormatError, match="wrong header: magic"):
        read(wrong, format="ishne")
    with pytest.raises(FormatError, match=r"truncated file: ECG block ends at byte 1000000 of 2294274"):
        read(damaged(tmp_path, src, data[:1_000_000], "short.ecg"))
    bad = bytearray(data)
    bad[10 + 272] = 0xF4  # sampling rate 1000 -> 500: header changed, CRC not updated
    with pytest.raises(FormatError, match="bad CRC: ISHNE header"):
        read(damaged(tmp_path, src, bytes(bad), "crc.ecg"))


def test_edf_truncated_and_wrong_header(tmp_path: Path, formats: Path) -> None:
    src = formats / "edf/contec_0000050.edf"
    data = src.read_bytes()
    with pytest.raises(FormatError, match="truncated file: EDF data ends at byte 455924 of 911848"):
        read(damaged(tmp_path, src, data[: len(data) // 2], "half.edf"))
    with pytest.raises(FormatError, match="truncated file"):
        read(damaged(tmp_path, src, data[:100], "tiny.edf"), format="edf")
    wrong = damaged(tmp_path, src, b"9" + data[1:], "wrong.edf")
    with pytest.raises(FormatError, match="unknown format"):
        read(wrong)
    with pytest.raises(FormatError, match="wrong header: version field"):
        read(wrong, format="edf")


def test_dicom_truncated_and_not_ecg(tmp_path: Path, formats: Path) -> None:
    src = formats / "dicom/waveform_ecg.dcm"
    data = src.read_bytes()
    with pytest.raises(FormatError):
        read(damaged(tmp_path, src, data[:200_000]))
    import pydicom

    ds = pydicom.dcmread(str(src))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.9.2.1"  # hemodynamic waveform
    other = tmp_path / "hemo.dcm"
    ds.save_as(str(other))
    with pytest.raises(FormatError, match="not an ECG waveform"):
        read(other)


def test_aecg_mismatched_lead_lengths_and_broken_xml(tmp_path: Path, formats: Path) -> None:
    src = formats / "hl7aecg/hl7_aecg_example_subject1_0.xml"
    text = src.read_text()
    start = text.index("<digits>", text.index('code="MDC_ECG_LEAD_V2"'))
    shorter = text[: start + 8] + text[start + 8 :].split(" ", 11)[-1]  # drop 10 samples of V2
    with pytest.raises(FormatError, match=r"leads have different lengths \(.*V2=4990"):
        read(damaged(tmp_path, src, shorter.encode()))
    with pytest.raises(FormatError, match="malformed XML"):
        read(damaged(tmp_path, src, text[: len(text) // 2].encode(), "half.xml"))


def test_philips_truncated(tmp_path: Path, formats: Path) -> None:
    src = formats / "philips_xml/129DYPRG_v1.03.xml"
    with pytest.raises(FormatError, match="malformed XML"):
        read(damaged(tmp_path, src, src.read_bytes()[:30000]))


def test_wfdb_truncated_and_missing_signal(tmp_path: Path, formats: Path) -> None:
    mitdb = formats.parent / "mitdb"
    shutil.copy(mitdb / "100.hea", tmp_path / "100.hea")
    (tmp_path / "100.dat").write_bytes((mitdb / "100.dat").read_bytes()[:500_000])
    with pytest.raises(FormatError, match=r"truncated file: 100\.dat holds 500000 bytes, the header implies 1950000"):
        read(tmp_path / "100")
    (tmp_path / "100.dat").unlink()
    with pytest.raises(FormatError, match=r"signal file 100\.dat is missing"):
        read(tmp_path / "100.hea")
    cinc = formats.parent / "cinc2017"
    (tmp_path / "A00001.hea").write_text((cinc / "A00001.hea").read_text().replace(" 9000 ", " 9500 "))
    shutil.copy(cinc / "A00001.mat", tmp_path / "A00001.mat")
    with pytest.raises(FormatError, match=r"truncated file: A00001\.mat holds 9000 samples, header says 9500"):
        read(tmp_path / "A00001.mat")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "unknown format"),
        (b"hello world, this is a letter\nnot an ECG at all\n", "unknown format|no unit"),
        (b'<?xml version="1.0"?><svg></svg>', r"unknown format: XML document with root element <svg>"),
    ],
)
def test_unknown_inputs(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=reason):
        read(path)
