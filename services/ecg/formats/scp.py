"""SCP-ECG reader (EN 1064:2005 / ISO 11073-91064), written from the standard.

Supported: record and section CRCs (CRC-CCITT, init 0xFFFF) checked; section 0 pointers; section 1
tags (patient, acquiring device, date/time, time zone, filters); section 2 Huffman tables including the
default table (19999) and table switching, or no section 2 (16-bit samples); section 3 lead definitions
(leads not all recorded over the same span are placed on one timeline, NaN outside their span);
section 4 QRS locations (exported as annotations) and reference-beat subtraction zones; section 5
reference beats (as ``median_beats``, and added back into the residual when section 3 says so);
section 6 rhythm data with no / first / second-difference encoding and bimodal compression; AVM
(nanovolts per unit) and sample interval; sections 7, 8 and 11 (device measurements and statements).

Limits: bimodal (decimated) stretches are reconstructed by sample-and-hold, without the standard's
optional reconstruction filter; section 10 (per-lead measurements) is not read. When section 6 stores
fewer samples than section 3 declares, identically for every lead (some writers cap the 16-bit
per-lead byte count), the shorter record is returned with a warning; unequal shortfalls are an error.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.ecg.formats.model import Annotation, Device, FormatError, MedianBeats, Recording, unique_lead_names
from services.ecg.formats.scp_huffman import HuffmanTable, huffman_decode, parse_section2, undo_differences
from services.ecg.formats.scp_meta import parse_section1, parse_section7, parse_statements, scp_lead_name

SECTION_HEADER = 16


def crc_ccitt(data: bytes) -> int:
    """CRC-CCITT as SCP-ECG uses it (polynomial 0x1021, initial value 0xFFFF)."""
    return binascii.crc_hqx(data, 0xFFFF)


def looks_like_scp(head: bytes, file_size: int) -> bool:
    if len(head) < 22:
        return False
    if head[16:22] == b"SCPECG":
        return True
    record_size, section_id, section_len = struct.unpack_from("<IHI", head, 2)
    return bool(record_size == file_size and section_id == 0 and 16 < section_len < 2000)


def split_sections(data: bytes) -> dict[int, bytes]:
    """Verify the record and section CRCs, return {section id: body without its 16-byte header}."""
    if len(data) < 6 + SECTION_HEADER:
        raise FormatError(f"truncated file: {len(data)} bytes cannot hold an SCP-ECG record header")
    stored_crc, size = struct.unpack_from("<HI", data, 0)
    if size > len(data):
        raise FormatError(f"truncated file: the record declares {size} bytes, the file has {len(data)}")
    if size < 6 + SECTION_HEADER:
        raise FormatError(f"wrong header: record size {size} is too small")
    computed = crc_ccitt(data[2:size])
    if computed != stored_crc:
        raise FormatError(f"bad CRC: record CRC stored 0x{stored_crc:04X}, computed 0x{computed:04X}")
    s0_id, s0_len = struct.unpack_from("<HI", data, 8)
    if s0_id != 0 or not SECTION_HEADER < s0_len <= size - 6:
        raise FormatError("wrong header: section 0 (pointers) is missing at byte 6")
    sections: dict[int, bytes] = {}
    for k in range((s0_len - SECTION_HEADER) // 10):
        sid, length, index = struct.unpack_from("<HII", data, 6 + SECTION_HEADER + 10 * k)
        if length == 0:
            continue
        start = index - 1
        if start < 6 or length < SECTION_HEADER:
            raise FormatError(f"wrong header: section {sid} pointer (byte {index}, {length} bytes) is invalid")
        if start + length > size:
            raise FormatError(f"truncated file: section {sid} ends at byte {start + length} of {size}")
        block = data[start : start + length]
        crc, hid, hlen = struct.unpack_from("<HHI", block, 0)
        if hid != sid or hlen != length:
            raise FormatError(f"wrong header: section {sid} header says id {hid}, length {hlen}")
        computed = crc_ccitt(block[2:])
        if computed != crc:
            raise FormatError(f"bad CRC in section {sid}: stored 0x{crc:04X}, computed 0x{computed:04X}")
        sections[sid] = block[SECTION_HEADER:]
    return sections


@dataclass
class _Leads:
    codes: list[int]
    starts: list[int]  # 1-based first sample
    counts: list[int]
    ref_beat_subtracted: bool


def _section3(body: bytes) -> _Leads:
    if len(body) < 2:
        raise FormatError("truncated section 3: no lead count")
    n, flags = body[0], body[1]
    if n == 0:
        raise FormatError("section 3 defines no leads")
    if len(body) < 2 + 9 * n:
        raise FormatError(f"truncated section 3: {n} leads need {2 + 9 * n} bytes, found {len(body)}")
    codes, starts, counts = [], [], []
    for k in range(n):
        first, last, code = struct.unpack_from("<IIB", body, 2 + 9 * k)
        first = max(first, 1)  # some writers number from 0
        if last < first:
            raise FormatError(f"section 3: lead {k + 1} ends (sample {last}) before it starts ({first})")
        codes.append(code)
        starts.append(first)
        counts.append(last - first + 1)
    return _Leads(codes, starts, counts, bool(flags & 1))


def _data_header(body: bytes, n_leads: int, sid: int) -> tuple[int, int, int, int, list[bytes]]:
    """Section 5/6 -> AVM (nV), sample interval (µs), difference encoding, bimodal flag, lead blobs."""
    if len(body) < 6 + 2 * n_leads:
        raise FormatError(f"truncated section {sid}: header for {n_leads} leads incomplete")
    avm, interval, encoding, bimodal = struct.unpack_from("<HHBB", body, 0)
    lengths = struct.unpack_from(f"<{n_leads}H", body, 6)
    pos = 6 + 2 * n_leads
    blobs = []
    for k, length in enumerate(lengths):
        if pos + length > len(body):
            raise FormatError(
                f"truncated file: section {sid} lead {k + 1} data ends at byte {pos + length} "
                f"of the section's {len(body)}"
            )
        blobs.append(body[pos : pos + length])
        pos += length
    if avm == 0 or interval == 0:
        raise FormatError(f"section {sid}: amplitude multiplier {avm} nV / sample interval {interval} µs invalid")
    return avm, interval, encoding, bimodal, blobs


def _decode(blob: bytes, n: int, tables: list[HuffmanTable] | None, encoding: int, where: str) -> np.ndarray:
    """One lead's blob -> up to ``n`` integer samples (raw 16-bit data may hold fewer: checked later)."""
    if tables is None:
        values = np.frombuffer(blob[: len(blob) // 2 * 2], dtype="<i2")[:n]
    else:
        values = huffman_decode(blob, n, tables, where)
    return undo_differences(values, encoding)


@dataclass
class _Qrs:
    ref_len_ms: int
    fiducial: int  # fcM, 1-based within the reference beat
    types: list[int]
    starts: list[int]
    fiducials: list[int]
    ends: list[int]
    protected: list[tuple[int, int]]


def _section4(body: bytes) -> _Qrs:
    if len(body) < 6:
        raise FormatError("truncated section 4")
    ref_len, fcm, n = struct.unpack_from("<HHH", body, 0)
    if len(body) < 6 + 14 * n:
        raise FormatError(f"truncated section 4: {n} QRS complexes declared")
    rows = [struct.unpack_from("<HIII", body, 6 + 14 * k) for k in range(n)]
    pos = 6 + 14 * n
    protected = [struct.unpack_from("<II", body, pos + 8 * k) for k in range(n) if pos + 8 * k + 8 <= len(body)]
    return _Qrs(
        ref_len,
        fcm,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [(int(a), int(b)) for a, b in protected],
    )


def _bimodal_layout(n: int, protected: list[tuple[int, int]], factor: int) -> np.ndarray:
    """Indices into the decoded stream for each of ``n`` samples (sample-and-hold outside protected)."""
    inside = np.zeros(n, dtype=bool)
    for a, b in protected:
        if a >= 1 and b >= a:
            inside[a - 1 : min(b, n)] = True
    new_value = inside.copy()
    run_pos = 0
    for i in range(n):  # position within each unprotected run
        if inside[i]:
            run_pos = 0
        else:
            new_value[i] = run_pos % factor == 0
            run_pos += 1
    return np.cumsum(new_value) - 1


def read_scp(path: str | Path) -> Recording:
    data = Path(path).read_bytes()
    sections = split_sections(data)
    for required in (3, 6):
        if required not in sections:
            raise FormatError(f"not a complete SCP-ECG record: section {required} is missing")
    warnings: list[str] = []
    leads = _section3(sections[3])
    n_leads = len(leads.codes)
    tables = parse_section2(sections[2]) if 2 in sections else None
    avm, interval, encoding, bimodal, blobs = _data_header(sections[6], n_leads, 6)
    qrs = _section4(sections[4]) if 4 in sections else None

    median: MedianBeats | None = None
    ref_nv: list[np.ndarray] | None = None
    fs = 1e6 / interval
    factor = 1
    names = unique_lead_names(scp_lead_name(c) for c in leads.codes)
    if 5 in sections and qrs is not None and qrs.ref_len_ms:
        avm5, interval5, enc5, _, blobs5 = _data_header(sections[5], n_leads, 5)
        n_ref = qrs.ref_len_ms * 1000 // interval5
        ref_nv = [
            _decode(b, n_ref, tables, enc5, f" (section 5 lead {k + 1})").astype(np.float64) * avm5
            for k, b in enumerate(blobs5)
        ]
        median = MedianBeats(1e6 / interval5, list(names), np.stack(ref_nv, axis=1) * 1e-6)
        if bimodal:
            if interval % interval5:
                raise FormatError(f"bimodal compression: interval {interval} µs is not a multiple of {interval5} µs")
            fs, factor = 1e6 / interval5, interval // interval5

    columns: list[np.ndarray] = []
    for k, blob in enumerate(blobs):
        where = f" (section 6 lead {k + 1})"
        n = leads.counts[k]
        if bimodal:
            if qrs is None or not qrs.protected or ref_nv is None:
                raise FormatError("bimodal compression needs sections 4 and 5 (protected areas)")
            layout = _bimodal_layout(n, qrs.protected, factor)
            decoded = _decode(blob, int(layout[-1]) + 1, tables, encoding, where)
            if len(decoded) <= layout[-1]:
                raise FormatError(f"truncated file: bimodal data{where} holds {len(decoded)} values")
            values = decoded[layout]
        else:
            values = _decode(blob, n, tables, encoding, where)
        columns.append(values.astype(np.float64) * avm)

    if leads.ref_beat_subtracted:
        if ref_nv is None or qrs is None:
            raise FormatError("section 3 says reference beats were subtracted, but section 4/5 is missing")
        for col, ref in zip(columns, ref_nv, strict=True):
            for btype, sb, fc, se in zip(qrs.types, qrs.starts, qrs.fiducials, qrs.ends, strict=True):
                if btype != 0 or sb < 1 or se < sb:
                    continue
                idx = np.arange(sb, se + 1) - fc + qrs.fiducial - 1
                rows = np.arange(sb - 1, se)
                ok = (idx >= 0) & (idx < len(ref)) & (rows < len(col))
                col[rows[ok]] += ref[idx[ok]]

    got = [len(c) for c in columns]
    if got != leads.counts:
        short = {(s, g) for s, g, d in zip(leads.starts, got, leads.counts, strict=True) if g < d}
        if len(short) == 1 and all(g < d for g, d in zip(got, leads.counts, strict=True)) and len(set(got)) == 1:
            warnings.append(
                f"section 6 stores {got[0]} samples per lead but section 3 declares {leads.counts[0]}; "
                f"the recording ends at {got[0] / fs:.2f} s"
            )
        else:
            detail = ", ".join(f"{nm}={g}/{d}" for nm, g, d in zip(names, got, leads.counts, strict=True))
            raise FormatError(f"leads have different lengths (stored/declared samples: {detail})")

    first = min(leads.starts)
    total = max(s - first + g for s, g in zip(leads.starts, got, strict=True))
    signal = np.full((total, n_leads), np.nan, dtype=np.float32)
    for k, (s, col) in enumerate(zip(leads.starts, columns, strict=True)):
        signal[s - first : s - first + len(col), k] = col * 1e-6

    patient, device, start, extra = parse_section1(sections[1]) if 1 in sections else ({}, Device(), None, {})
    measurements = parse_section7(sections[7]) if 7 in sections else {}
    statements = [s for sid in (8, 11) if sid in sections for s in parse_statements(sections[sid], sid)]
    if statements:
        measurements["statements"] = statements
    annotations = []
    if qrs is not None:
        annotations = [
            Annotation(sample=fc - first, label="QRS", aux=f"beat type {t}")
            for t, fc in zip(qrs.types, qrs.fiducials, strict=True)
            if 1 <= fc - first + 1 <= total
        ]
    extra.update(
        {
            "amplitude_nv_per_unit": avm,
            "difference_encoding": encoding,
            "huffman": tables is not None,
            "bimodal": bool(bimodal),
            "reference_beat_subtracted": leads.ref_beat_subtracted,
        }
    )
    return Recording(
        fs=fs,
        lead_names=names,
        signal_mv=signal,
        source_format="scp",
        start_time=start,
        patient=patient,
        device_measurements=measurements,
        annotations=annotations,
        median_beats=median,
        warnings=warnings,
        extra=extra,
        device=device,
    )
