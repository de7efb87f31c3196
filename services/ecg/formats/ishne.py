"""ISHNE 1.0 Holter ECG (Badilini et al., 1998) and its ``.ann`` annotation file.

Layout: magic ``ISHNE1.0`` (8 bytes), CRC-CCITT (2 bytes, init 0xFFFF) over the 512-byte fixed header
plus the variable-length block, then the fixed header (little-endian), the variable block, and the
ECG block of int16 samples interleaved by lead. Amplitude resolution is per lead in nV. The signal is
memory-mapped and converted to mV only for the rows asked for, so 24-hour recordings stream through
``iter_chunks``.

A sibling ``<stem>.ann`` (magic ``ANN  1.0``, same header) holds a 4-byte start offset and 4-byte
records: label, internal-use byte, and the number of samples since the previous annotation.
"""

from __future__ import annotations

import struct
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from services.ecg.formats.model import Annotation, Device, FormatError, clean_text, put, unique_lead_names
from services.ecg.formats.scp import crc_ccitt
from services.ecg.formats.source import Source

MAGIC = b"ISHNE1.0"
ANN_MAGIC = b"ANN  1.0"
_HEADER = struct.Struct("<4ih40s40s20s2h3h3h3h3hh12h12h12hh40sh80s80s88s")
assert _HEADER.size == 512
PREAMBLE = 10  # magic + CRC

_LEADS = {
    1: "BIPOLAR",
    2: "X",
    3: "Y",
    4: "Z",
    5: "I",
    6: "II",
    7: "III",
    8: "aVR",
    9: "aVL",
    10: "aVF",
    11: "V1",
    12: "V2",
    13: "V3",
    14: "V4",
    15: "V5",
    16: "V6",
    17: "ES",
    18: "AS",
    19: "AI",
    20: "S",
    21: "I_FRANK",
    22: "E",
    23: "C",
    24: "A",
    25: "M",
    26: "F",
    27: "H",
}
_QUALITY = {
    -9: "absent",
    0: "unknown",
    1: "good",
    2: "intermittent noise",
    3: "frequent noise",
    4: "intermittent disconnection",
    5: "frequent disconnection",
}


def _header(data: bytes, magic: bytes, what: str, zero_crc_ok: bool = False) -> tuple[dict[str, Any], int]:
    if len(data) < PREAMBLE + _HEADER.size:
        raise FormatError(f"truncated file: {len(data)} bytes cannot hold an {what} header")
    if data[:8] != magic:
        raise FormatError(f"wrong header: magic {data[:8]!r}, expected {magic!r}")
    (stored_crc,) = struct.unpack_from("<H", data, 8)
    v = _HEADER.unpack_from(data, PREAMBLE)
    var_size = v[0]
    end = PREAMBLE + _HEADER.size + max(var_size, 0)
    if var_size < 0 or end > len(data):
        raise FormatError(f"truncated file: {what} header block ends at byte {end} of {len(data)}")
    computed = crc_ccitt(data[PREAMBLE:end])
    if computed != stored_crc and not (zero_crc_ok and stored_crc == 0):
        raise FormatError(f"bad CRC: {what} header CRC stored 0x{stored_crc:04X}, computed 0x{computed:04X}")
    fields = {
        "n_samples": v[1],
        "data_offset": v[3],
        "first": v[5],
        "last": v[6],
        "id": v[7],
        "sex": v[8],
        "race": v[9],
        "birth": v[10:13],
        "record_date": v[13:16],
        "start_time": v[19:22],
        "n_leads": v[22],
        "lead_spec": v[23:35],
        "lead_quality": v[35:47],
        "resolution_nv": v[47:59],
        "pacemaker": v[59],
        "recorder": v[60],
        "fs": v[61],
    }
    return fields, end


def _date(dmy: tuple[int, int, int]) -> date | None:
    day, month, year = dmy
    try:
        return date(year, month, day) if year > 0 else None
    except ValueError:
        return None


def read_ishne_annotations(path: Path, n_samples: int) -> list[Annotation]:
    data = path.read_bytes()
    # annotation writers commonly leave the CRC at 0 ("not computed"): accepted, a wrong one is not
    fields, _ = _header(data, ANN_MAGIC, "ISHNE annotation", zero_crc_ok=True)
    pos = fields["data_offset"]
    if pos < PREAMBLE + _HEADER.size or pos + 4 > len(data):
        raise FormatError(f"truncated file: {path.name} has no annotation block")
    (sample,) = struct.unpack_from("<i", data, pos)
    pos += 4
    marks = []
    for label, internal, toc in struct.iter_unpack("<ccH", data[pos : pos + (len(data) - pos) // 4 * 4]):
        sample += toc
        if sample >= n_samples:
            break
        marks.append(
            Annotation(sample=sample, label=label.decode("latin-1"), aux=clean_text(internal.decode("latin-1")) or "")
        )
    return marks


def open_ishne(path: str | Path) -> Source:
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(PREAMBLE + _HEADER.size)
        var_size = struct.unpack_from("<i", head, PREAMBLE)[0] if len(head) >= PREAMBLE + 4 else 0
        if 0 < var_size <= 1 << 24:
            head += fh.read(var_size)
    size = path.stat().st_size
    h, header_end = _header(head, MAGIC, "ISHNE")
    n_leads, n_samples, fs = h["n_leads"], h["n_samples"], h["fs"]
    if not 1 <= n_leads <= 12:
        raise FormatError(f"wrong header: ISHNE lead count {n_leads} (1-12 allowed)")
    if fs <= 0 or n_samples <= 0:
        raise FormatError(f"wrong header: sampling rate {fs} Hz, {n_samples} samples per lead")
    resolution = np.array(h["resolution_nv"][:n_leads], dtype=np.float64)
    if (resolution <= 0).any():
        raise FormatError(f"wrong header: lead resolutions {resolution.tolist()} nV")
    offset = h["data_offset"]
    expected = offset + n_samples * n_leads * 2
    if offset < header_end:
        raise FormatError(f"wrong header: ECG block offset {offset} overlaps the header")
    if size < expected:
        raise FormatError(f"truncated file: ECG block ends at byte {size} of {expected}")
    samples = np.memmap(path, dtype="<i2", mode="r", offset=offset, shape=(n_samples, n_leads))
    scale = (resolution * 1e-6).astype(np.float32)

    def read_range(start: int, stop: int) -> np.ndarray:
        return samples[start:stop].astype(np.float32) * scale

    names = unique_lead_names(_LEADS.get(code, f"LEAD{k + 1}") for k, code in enumerate(h["lead_spec"][:n_leads]))
    patient: dict[str, Any] = {}
    put(patient, "id", clean_text(h["id"]))
    first, last = clean_text(h["first"]), clean_text(h["last"])
    put(patient, "name", " ".join(p for p in (first, last) if p and p.lower() != "none"))
    put(patient, "sex", {1: "M", 2: "F"}.get(h["sex"]))
    put(patient, "birth_date", _date(h["birth"]))
    start = None
    rec_date = _date(h["record_date"])
    if rec_date is not None:
        hh, mm, ss = h["start_time"]
        try:
            start = datetime(rec_date.year, rec_date.month, rec_date.day, hh, mm, ss)
        except ValueError:
            start = None
    ann_path = path.with_suffix(".ann")
    annotations = read_ishne_annotations(ann_path, n_samples) if ann_path.is_file() else []
    meta = {
        "fs": float(fs),
        "lead_names": names,
        "source_format": "ishne",
        "start_time": start,
        "device": Device(model=clean_text(h["recorder"])),
        "patient": patient,
        "annotations": annotations,
        "extra": {
            "lead_quality": {n: _QUALITY.get(q, str(q)) for n, q in zip(names, h["lead_quality"], strict=False)},
            "pacemaker": h["pacemaker"],
            "resolution_nv": resolution.tolist(),
        },
    }
    return Source(meta=meta, n_samples=n_samples, read_range=read_range)
