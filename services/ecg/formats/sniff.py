"""Recognise an ECG file's format from its content (magic bytes, XML root, header), not its name.

The file name is used only where the format itself is defined by file pairs: a WFDB record is a
``.hea`` header plus signal files, so ``100``, ``100.hea``, ``100.dat`` all name record ``100``.
"""

from __future__ import annotations

import re
from pathlib import Path

from services.ecg.formats.model import FormatError
from services.ecg.formats.scp import looks_like_scp

_WFDB_SUFFIXES = {".hea", ".dat", ".mat"}
_XML_ROOTS = {"annotatedecg": "hl7_aecg", "restingecgdata": "philips_xml"}
_WFDB_RECORD_LINE = re.compile(r"^[\w\-.]+(/\d+)?\s+\d+(\s+[\d.]+(/[\d.]+)?(\(\d+\))?)?(\s+\d+)?")


def _text(head: bytes) -> str | None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head[: len(head) // 2 * 2].decode("utf-16", errors="ignore")
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # possibly cut inside a multi-byte character at the end
        if exc.start > len(head) - 4:
            return head[: exc.start].decode("utf-8-sig")
        return None


def xml_root(text: str) -> str | None:
    stripped = re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", "", text, flags=re.S).lstrip()
    match = re.match(r"<(?:[\w.\-]+:)?([\w.\-]+)[\s>/]", stripped)
    return match.group(1) if match else None


def detect_format(path: str | Path) -> str:
    """One of wfdb, edf, ishne, scp, dicom, hl7_aecg, philips_xml, csv; FormatError if none fits."""
    p = Path(path)
    if not p.is_file():
        if Path(f"{p}.hea").is_file():
            return "wfdb"
        raise FileNotFoundError(str(p))
    size = p.stat().st_size
    if size == 0:
        raise FormatError("empty file")
    with p.open("rb") as fh:
        head = fh.read(16384)
    if head.startswith(b"ISHNE1.0"):
        return "ishne"
    if head.startswith(b"ANN  1.0"):
        raise FormatError("this is an ISHNE annotation file: upload the .ecg recording it belongs to")
    if head[128:132] == b"DICM":
        return "dicom"
    if looks_like_scp(head, size):
        return "scp"
    if (head[:8] == b"0       " or head[:8] == b"\xffBIOSEMI") and len(head) >= 256 and head[184:192].strip().isdigit():
        return "edf"
    if p.suffix.lower() in _WFDB_SUFFIXES and p.with_suffix(".hea").is_file():
        return "wfdb"
    text = _text(head)
    if text is None:
        raise FormatError(f"unknown format: {p.name} is binary and matches no supported ECG format")
    if text.lstrip().startswith("<"):
        root = xml_root(text)
        if root and root.lower() in _XML_ROOTS:
            return _XML_ROOTS[root.lower()]
        raise FormatError(f"unknown format: XML document with root element <{root or '?'}>")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if (
        len(lines) >= 2
        and _WFDB_RECORD_LINE.match(lines[0])
        and re.match(r"^\S+\s+\d+", lines[1])
        and "," not in lines[0]
        and ";" not in lines[0]
    ):
        return "wfdb"
    if lines and any(d in lines[0] for d in (",", ";", "\t")):
        return "csv"
    if text.lstrip().startswith("#") and lines:
        return "csv"
    raise FormatError(f"unknown format: {p.name} is text but neither a WFDB header nor CSV")
