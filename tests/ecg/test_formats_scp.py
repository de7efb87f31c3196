"""SCP-ECG reader unit tests on records built here: Huffman tables (default, custom, switching),
difference encodings, reference-beat subtraction, bimodal compression, CRCs and section checks."""

from __future__ import annotations

import struct
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from services.ecg.formats import FormatError, read
from services.ecg.formats.scp import crc_ccitt
from services.ecg.formats.scp_huffman import DEFAULT_TABLE, huffman_decode, parse_section2, undo_differences

LEAD_CODES = {"I": 1, "II": 2, "V1": 3, "V2": 4, "III": 61, "aVR": 62}


def section(sid: int, body: bytes) -> bytes:
    rest = struct.pack("<HIBB6s", sid, 16 + len(body), 20, 20, b"SCPECG" if sid == 0 else b"\0" * 6) + body
    return struct.pack("<H", crc_ccitt(rest)) + rest


def record(sections: dict[int, bytes]) -> bytes:
    ids = sorted(set(range(12)) | set(sections) | {0})
    s0_len = 16 + 10 * len(ids)
    pos, pointers, blocks = 6 + s0_len, [], []
    for sid in ids:
        if sid == 0:
            pointers.append(struct.pack("<HII", 0, s0_len, 7))
        elif sid in sections:
            block = section(sid, sections[sid])
            pointers.append(struct.pack("<HII", sid, len(block), pos + 1))
            blocks.append(block)
            pos += len(block)
        else:
            pointers.append(struct.pack("<HII", sid, 0, 0))
    body = section(0, b"".join(pointers)) + b"".join(blocks)
    payload = struct.pack("<I", 6 + len(body)) + body
    return struct.pack("<H", crc_ccitt(payload)) + payload


def second_differences(x: np.ndarray) -> list[int]:
    d = [int(x[0]), int(x[1])]
    d += [int(x[n] - 2 * x[n - 1] + x[n - 2]) for n in range(2, len(x))]
    return d


def encode_default(values: list[int]) -> bytes:
    bits = []
    for v in values:
        if v == 0:
            bits.append("0")
        elif abs(v) <= 8:
            bits.append("1" * abs(v) + "0" + ("0" if v > 0 else "1"))
        elif -128 <= v <= 127:
            bits.append("1111111110" + format(v & 0xFF, "08b"))
        else:
            bits.append("1111111111" + format(v & 0xFFFF, "016b"))
    s = "".join(bits)
    s += "0" * (-len(s) % 8)
    return int(s, 2).to_bytes(len(s) // 8, "big") if s else b""


def section3(names: list[str], n: int, ref_beat: bool = False, starts: list[int] | None = None) -> bytes:
    flags = (1 if ref_beat else 0) | 4 | (len(names) << 3)
    out = struct.pack("<BB", len(names), flags)
    for k, name in enumerate(names):
        first = starts[k] if starts else 1
        out += struct.pack("<IIB", first, first + n - 1, LEAD_CODES[name])
    return out


def data_section(blobs: list[bytes], avm: int, interval: int, encoding: int, bimodal: int = 0) -> bytes:
    return (
        struct.pack("<HHBB", avm, interval, encoding, bimodal)
        + struct.pack(f"<{len(blobs)}H", *map(len, blobs))
        + b"".join(blobs)
    )


def synthetic(n: int = 1500, leads: int = 3, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 500
    base = 400 * np.sin(2 * np.pi * 1.2 * t)[:, None] * rng.uniform(0.5, 1.5, leads)
    return np.round(base + rng.normal(0, 3, (n, leads))).astype(np.int64)


def write(tmp_path: Path, data: bytes, name: str = "x.scp") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_en1064_worked_example_second_differences() -> None:
    stream = bytes([0xFF, 0x83, 0x7F, 0xE0, 0xE6, 0xF1, 0x53, 0x65, 0x59, 0xB6, 0x5B, 0x96, 0x4B, 0x96, 0x00])
    values = undo_differences(huffman_decode(stream, 28, [DEFAULT_TABLE]), 2)
    assert values.tolist() == [
        13,
        14,
        15,
        14,
        16,
        18,
        19,
        20,
        22,
        22,
        23,
        23,
        23,
        22,
        22,
        20,
        17,
        15,
        12,
        8,
        6,
        3,
        1,
        0,
        -2,
        -2,
        -3,
        -3,
    ]


def test_difference_decodings_invert_encodings() -> None:
    x = np.array([5, -3, 200, 32000, -32000, 7, 7, 0], dtype=np.int64)
    assert undo_differences(x, 0).tolist() == x.tolist()
    assert undo_differences(np.diff(x, prepend=0), 1).tolist() == x.tolist()
    assert undo_differences(np.array(second_differences(x)), 2).tolist() == x.tolist()


@pytest.mark.parametrize("encoding", [0, 1, 2])
def test_default_huffman_record_roundtrip(tmp_path: Path, encoding: int) -> None:
    x = synthetic()
    names = ["I", "II", "V1"]
    streams = {0: lambda c: c.tolist(), 1: lambda c: np.diff(c, prepend=0).tolist(), 2: second_differences}
    blobs = [encode_default(streams[encoding](x[:, k])) for k in range(3)]
    data = record(
        {2: struct.pack("<H", 19999), 3: section3(names, len(x)), 6: data_section(blobs, 5000, 2000, encoding)}
    )
    rec = read(write(tmp_path, data))
    assert rec.fs == 500 and rec.lead_names == names and rec.n_samples == len(x)
    np.testing.assert_allclose(rec.signal_mv, x * 0.005, atol=1e-6)
    assert rec.extra["huffman"] and rec.extra["difference_encoding"] == encoding


def test_custom_huffman_table_from_section2(tmp_path: Path) -> None:
    # table: 0 -> "0", +1 -> "10", -1 -> "110", escape "111" + 16-bit value; base codes stored bit-reversed
    def entry(prefix: str, total: int, value: int) -> bytes:
        base = sum(1 << i for i, b in enumerate(prefix) if b == "1")
        return struct.pack("<BBBhI", len(prefix), total, 1, value, base)

    sec2 = struct.pack("<HH", 1, 4) + entry("0", 1, 0) + entry("10", 2, 1) + entry("110", 3, -1) + entry("111", 19, 0)
    x = np.array([100, 101, 101, 100, -2000, -2000, 5], dtype=np.int64)
    d = np.diff(x, prepend=0)
    codes = {0: "0", 1: "10", -1: "110"}
    bits = "".join(codes.get(int(v), "111" + format(int(v) & 0xFFFF, "016b")) for v in d)
    bits += "0" * (-len(bits) % 8)
    blob = int(bits, 2).to_bytes(len(bits) // 8, "big")
    data = record({2: sec2, 3: section3(["II"], len(x)), 6: data_section([blob], 1000, 1000, 1)})
    rec = read(write(tmp_path, data))
    np.testing.assert_allclose(rec.lead("II"), x * 0.001, atol=1e-7)


def test_huffman_table_switch() -> None:
    def entry(prefix: str, total: int, mode: int, value: int) -> bytes:
        base = sum(1 << i for i, b in enumerate(prefix) if b == "1")
        return struct.pack("<BBBhI", len(prefix), total, mode, value, base)

    # table 1: "0" -> 0, "1" -> switch to table 2; table 2: "0" -> 7, "1" -> switch to table 1
    sec2 = (
        struct.pack("<HH", 2, 2)
        + entry("0", 1, 1, 0)
        + entry("1", 1, 0, 2)
        + struct.pack("<H", 2)
        + entry("0", 1, 1, 7)
        + entry("1", 1, 0, 1)
    )
    tables = parse_section2(sec2)
    stream = int("01001000", 2).to_bytes(1, "big")  # 0, [->2], 7, 7, [->1], 0
    assert huffman_decode(stream, 4, tables).tolist() == [0, 7, 7, 0]


def test_reference_beat_subtraction_and_qrs_annotations(tmp_path: Path) -> None:
    n, ref_len, fcm = 1000, 100, 40  # reference beat: 100 samples, fiducial at its 40th sample (1-based)
    ref = np.round(800 * np.exp(-0.5 * ((np.arange(ref_len) - 39) / 4) ** 2)).astype(np.int64)
    fiducials = [200, 600]
    x = np.full(n, 10, dtype=np.int64)
    zones = []
    for fc in fiducials:
        sb, se = fc - 20, fc + 30
        zones.append((0, sb, fc, se))
        for s in range(sb, se + 1):
            x[s - 1] += ref[s - fc + fcm - 1]
    residual = x.copy()
    for _, sb, fc, se in zones:
        for s in range(sb, se + 1):
            residual[s - 1] -= ref[s - fc + fcm - 1]
    sec4 = struct.pack("<HHH", ref_len * 2, fcm, len(zones))  # length in ms at 500 Hz
    sec4 += b"".join(struct.pack("<HIII", *z) for z in zones)
    sec4 += b"".join(struct.pack("<II", sb, se) for _, sb, _, se in zones)
    data = record(
        {
            2: struct.pack("<H", 19999),
            3: section3(["II"], n, ref_beat=True),
            4: sec4,
            5: data_section([encode_default(second_differences(ref))], 2500, 2000, 2),
            6: data_section([encode_default(second_differences(residual))], 2500, 2000, 2),
        }
    )
    rec = read(write(tmp_path, data))
    np.testing.assert_allclose(rec.lead("II"), x * 0.0025, atol=1e-6)
    assert rec.median_beats is not None and rec.median_beats.signal_mv.shape == (ref_len, 1)
    assert [a.sample for a in rec.annotations] == [fc - 1 for fc in fiducials]


def test_bimodal_compression_sample_and_hold(tmp_path: Path) -> None:
    n, factor = 40, 4
    x = np.arange(n, dtype=np.int64) * 3
    protected = (11, 20)  # samples 11..20 (1-based) kept at the full rate
    stream = []
    run = 0
    for i in range(n):
        if protected[0] <= i + 1 <= protected[1]:
            stream.append(int(x[i]))
            run = 0
        else:
            if run % factor == 0:
                stream.append(int(x[i]))
            run += 1
    sec4 = struct.pack("<HHH", 20, 5, 1) + struct.pack("<HIII", 1, 0, 0, 0) + struct.pack("<II", *protected)
    data = record(
        {
            2: struct.pack("<H", 19999),
            3: section3(["I"], n),
            4: sec4,
            5: data_section([encode_default([0] * 20)], 1000, 1000, 0),
            6: data_section([encode_default(stream)], 1000, 1000 * factor, 0, bimodal=1),
        }
    )
    rec = read(write(tmp_path, data))
    assert rec.fs == 1000 and rec.n_samples == n and rec.extra["bimodal"]
    held = np.array(
        [x[i - (i % factor)] for i in range(10)]
        + list(x[10:20])
        + [x[20 + ((i - 20) // factor) * factor] for i in range(20, n)]
    )
    np.testing.assert_allclose(rec.lead("I"), held * 0.001, atol=1e-7)


def test_leads_on_different_spans_share_one_timeline(tmp_path: Path) -> None:
    x = synthetic(n=500, leads=2)
    blobs = [x[:, k].astype("<i2").tobytes() for k in range(2)]
    data = record({3: section3(["I", "V1"], 500, starts=[1, 501]), 6: data_section(blobs, 1000, 2000, 0)})
    rec = read(write(tmp_path, data))
    assert rec.n_samples == 1000
    assert np.isnan(rec.lead("V1")[:500]).all() and np.isnan(rec.lead("I")[500:]).all()


def test_bad_crc_is_rejected(tmp_path: Path) -> None:
    x = synthetic(n=200, leads=1)
    good = record({3: section3(["I"], 200), 6: data_section([x[:, 0].astype("<i2").tobytes()], 1000, 2000, 0)})
    bad = bytearray(good)
    bad[-5] ^= 0x40  # a sample byte in section 6
    with pytest.raises(FormatError, match="bad CRC: record CRC"):
        read(write(tmp_path, bytes(bad)))
    bad[:2] = struct.pack("<H", crc_ccitt(bytes(bad[2:])))  # record CRC fixed, section CRC still wrong
    with pytest.raises(FormatError, match="bad CRC in section 6"):
        read(write(tmp_path, bytes(bad)))


def test_unequal_lead_lengths_are_rejected(tmp_path: Path) -> None:
    x = synthetic(n=300, leads=2)
    blobs = [x[:, 0].astype("<i2").tobytes(), x[:250, 1].astype("<i2").tobytes()]
    data = record({3: section3(["I", "II"], 300), 6: data_section(blobs, 1000, 2000, 0)})
    with pytest.raises(FormatError, match="leads have different lengths"):
        read(write(tmp_path, data))


def test_huffman_data_running_out_is_truncation(tmp_path: Path) -> None:
    x = synthetic(n=400, leads=1)
    blob = encode_default(second_differences(x[:, 0]))[:-20]
    data = record({2: struct.pack("<H", 19999), 3: section3(["I"], 400), 6: data_section([blob], 1000, 2000, 2)})
    with pytest.raises(FormatError, match="truncated Huffman data"):
        read(write(tmp_path, data))


def test_section1_tags_section7_measurements_section8_statements(tmp_path: Path) -> None:
    def tag(t: int, value: bytes) -> bytes:
        return struct.pack("<BH", t, len(value)) + value

    machine = (
        struct.pack("<HHHBB", 1, 2, 3, 0, 17)
        + b"AT-102"
        + bytes([20, 0xA0, 0, 0, 1])
        + bytes(16)
        + b"\x04A.1\x00"
        + b"SN4711\x00"
        + b"sys\x00"
        + b"scp-sw 2\x00"
        + b"\x00"
    )
    sec1 = b"".join(
        [
            tag(0, b"Zhang\x00"),
            tag(1, b"Wei\x00"),
            tag(2, b"P-001\x00"),
            tag(5, struct.pack("<HBB", 1960, 2, 29)),
            tag(4, struct.pack("<HB", 66, 1)),
            tag(8, b"\x02"),
            tag(14, machine),
            tag(25, struct.pack("<HBB", 2026, 3, 1)),
            tag(26, bytes([8, 15, 30])),
            tag(34, struct.pack("<hH", 480, 0)),
            tag(255, b""),
        ]
    )
    beat = struct.pack("<5H3h", 100, 200, 260, 350, 700, 60, -30, 45)
    sec7 = (
        struct.pack("<BBHH", 1, 0, 800, 29999) + beat + struct.pack("<H", 0) + struct.pack("<HHHBH", 75, 75, 460, 1, 0)
    )
    statements = [b"Sinus rhythm\x00", b"Left axis deviation\x00"]
    sec8 = struct.pack("<BHBBBBBB", 0, 2026, 3, 1, 8, 20, 0, len(statements)) + b"".join(
        struct.pack("<BH", k + 1, len(s)) + s for k, s in enumerate(statements)
    )
    x = synthetic(n=100, leads=1)
    data = record(
        {
            1: sec1,
            3: section3(["I"], 100),
            6: data_section([x[:, 0].astype("<i2").tobytes()], 1000, 2000, 0),
            7: sec7,
            8: sec8,
        }
    )
    rec = read(write(tmp_path, data))
    assert rec.patient == {"id": "P-001", "name": "Wei Zhang", "birth_date": date(1960, 2, 29), "age": 66, "sex": "F"}
    assert "Zhang" not in repr(rec) and "P-001" not in repr(rec)
    assert rec.device.manufacturer == "Schiller"  # manufacturer code 17: the name string is empty
    assert rec.device.model == "AT-102" and rec.device.serial == "SN4711" and rec.device.software == "scp-sw 2"
    assert rec.start_time is not None and rec.start_time.isoformat() == "2026-03-01T08:15:30+08:00"
    assert rec.device_measurements == {
        "rr_ms": 800,
        "p_ms": 100,
        "pr_ms": 160,
        "qrs_ms": 90,
        "qt_ms": 440,
        "p_axis_deg": 60,
        "qrs_axis_deg": -30,
        "t_axis_deg": 45,
        "hr_bpm": 75,
        "atrial_rate_bpm": 75,
        "qtc_ms": 460,
        "qtc_formula": "Bazett",
        "statements": ["Sinus rhythm", "Left axis deviation"],
    }


@pytest.mark.parametrize("encoding", [1, 2])
def test_the_last_sample_survives_reference_beat_add_back_and_differences(tmp_path: Path, encoding: int) -> None:
    """A subtraction zone that runs to the record's last sample, difference-encoded: the end is exact."""
    n, ref_len, fcm = 600, 100, 40
    ref = np.round(900 * np.exp(-0.5 * ((np.arange(ref_len) - 39) / 5) ** 2) - 60).astype(np.int64)
    x = np.round(30 * np.sin(np.arange(n) / 25)).astype(np.int64)
    zones = [(0, 230, 250, 300), (0, n - 45, n - 15, n)]  # (type, start, fiducial, end): the last ends at n
    for _, sb, fc, se in zones:
        for s in range(sb, se + 1):
            x[s - 1] += ref[s - fc + fcm - 1]
    residual = x.copy()
    for _, sb, fc, se in zones:
        for s in range(sb, se + 1):
            residual[s - 1] -= ref[s - fc + fcm - 1]

    def encode(v: np.ndarray) -> bytes:
        diffs = second_differences(v) if encoding == 2 else [int(v[0]), *np.diff(v).tolist()]
        return encode_default(diffs)

    sec4 = struct.pack("<HHH", ref_len * 2, fcm, len(zones)) + b"".join(struct.pack("<HIII", *z) for z in zones)
    sec4 += b"".join(struct.pack("<II", sb, se) for _, sb, _, se in zones)
    data = record({
        2: struct.pack("<H", 19999),
        3: section3(["II"], n, ref_beat=True),
        4: sec4,
        5: data_section([encode(ref)], 2500, 2000, encoding),
        6: data_section([encode(residual)], 2500, 2000, encoding),
    })
    got = read(write(tmp_path, data)).lead("II")
    np.testing.assert_allclose(got, x * 0.0025, atol=1e-6)
    assert got[-1] == pytest.approx(x[-1] * 0.0025)


def test_demo_scp_is_read_exactly_as_stored() -> None:
    """demo.scp (raw 16-bit, no Huffman, no differences, no reference beats): every sample is the stored
    integer times the AVM. Its last sample jumps (lead I 0.748 mV after ~0.045 mV) because the file stores
    it so: every lead's 10 000th stored integer is unrelated to the trace. Its waveform is also stored
    inverted in every lead (P, QRS and T all negative in lead II), which the reader does not second-guess."""
    from services.ecg.formats.scp import split_sections
    from tests.ecg.ecg_service_support import data_dir

    path = data_dir() / "formats" / "scp" / "demo.scp"
    sec6 = split_sections(path.read_bytes())[6]
    avm, interval, encoding, bimodal = struct.unpack_from("<HHBB", sec6, 0)
    lengths = struct.unpack_from("<8H", sec6, 6)
    assert (avm, interval, encoding, bimodal, set(lengths)) == (183, 1000, 0, 0, {20_000})
    stored = np.frombuffer(sec6[6 + 16:], dtype="<i2").reshape(8, 10_000).T.astype(np.float64)
    rec = read(path)
    np.testing.assert_allclose(rec.signal_mv, stored * avm * 1e-6, rtol=0, atol=1e-6)
    assert int(stored[-1, 0]) == 4089 and abs(stored[-2, 0] * avm * 1e-6 - 0.045) < 0.005
    lead_ii = stored[:-1, 1] - np.median(stored[:-1, 1])
    assert -lead_ii.min() > 2 * lead_ii.max()  # the big deflection of every beat is negative
