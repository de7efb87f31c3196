"""SCP-ECG (EN 1064 / ISO 11073-91064) entropy decoding: Huffman tables (section 2) and difference data.

Bit order: the byte stream is read most-significant bit first. In section 2 a table's "base code" is
stored bit-reversed (the first transmitted bit is the least significant bit of the stored integer).
A code whose total length exceeds its prefix length is followed by (total - prefix) bits holding the
value itself as a two's-complement integer. A "table mode switch" entry (mode 0) selects the table
whose number is the entry's base value and yields no sample.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from services.ecg.formats.model import FormatError

DEFAULT_TABLE_MARKER = 19999


@dataclass(frozen=True)
class HuffmanCode:
    prefix_bits: int
    total_bits: int
    mode: int  # 1 = value code, 0 = switch to table number ``value``
    value: int
    code: str  # the prefix as transmitted, e.g. "1101"


class HuffmanTable:
    def __init__(self, codes: list[HuffmanCode]) -> None:
        if not codes:
            raise FormatError("section 2: empty Huffman table")
        self.by_length: dict[int, dict[str, HuffmanCode]] = {}
        for c in codes:
            if not 1 <= c.prefix_bits <= 32 or c.total_bits < c.prefix_bits or c.total_bits - c.prefix_bits > 32:
                raise FormatError(f"section 2: malformed Huffman code structure {c}")
            self.by_length.setdefault(c.prefix_bits, {})[c.code] = c
        self.lengths = sorted(self.by_length)


def _build_default() -> HuffmanTable:
    # EN 1064 default table: 0 -> "0"; +n / -n (n = 1..8) -> "1"*n + "0" + sign bit ("0" +, "1" -);
    # escapes "1111111110" + 8-bit value and "1111111111" + 16-bit value.
    codes = [HuffmanCode(1, 1, 1, 0, "0")]
    for n in range(1, 9):
        prefix = "1" * n + "0"
        codes.append(HuffmanCode(n + 2, n + 2, 1, n, prefix + "0"))
        codes.append(HuffmanCode(n + 2, n + 2, 1, -n, prefix + "1"))
    codes.append(HuffmanCode(10, 18, 1, 0, "1" * 9 + "0"))
    codes.append(HuffmanCode(10, 26, 1, 0, "1" * 10))
    return HuffmanTable(codes)


DEFAULT_TABLE = _build_default()


def parse_section2(body: bytes) -> list[HuffmanTable]:
    """Section 2 body (after the 16-byte section header) -> tables; the default table if marked so."""
    if len(body) < 2:
        raise FormatError("section 2 is too short to hold the number of Huffman tables")
    (n_tables,) = struct.unpack_from("<H", body, 0)
    if n_tables == DEFAULT_TABLE_MARKER:
        return [DEFAULT_TABLE]
    tables: list[HuffmanTable] = []
    pos = 2
    for t in range(n_tables):
        if pos + 2 > len(body):
            raise FormatError(f"truncated section 2: table {t + 1} of {n_tables} missing")
        (n_codes,) = struct.unpack_from("<H", body, pos)
        pos += 2
        codes: list[HuffmanCode] = []
        for _ in range(n_codes):
            if pos + 9 > len(body):
                raise FormatError(f"truncated section 2: table {t + 1} ends inside a code structure")
            prefix, total, mode, value, base = struct.unpack_from("<BBBhI", body, pos)
            pos += 9
            code = "".join("1" if (base >> i) & 1 else "0" for i in range(prefix))
            codes.append(HuffmanCode(prefix, total, mode, value, code))
        tables.append(HuffmanTable(codes))
    if not tables:
        raise FormatError("section 2 declares no Huffman tables")
    return tables


def _bits(data: bytes) -> str:
    arr = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    return (arr + 48).tobytes().decode("ascii")


def huffman_decode(data: bytes, n_values: int, tables: list[HuffmanTable], where: str = "") -> np.ndarray:
    """Decode exactly ``n_values`` values (before difference decoding) from ``data``."""
    bits = _bits(data)
    n_bits = len(bits)
    out = np.empty(n_values, dtype=np.int64)
    table = tables[0]
    pos = 0
    i = 0
    while i < n_values:
        entry: HuffmanCode | None = None
        for length in table.lengths:
            entry = table.by_length[length].get(bits[pos : pos + length])
            if entry is not None:
                break
        if entry is None:
            if n_bits - pos < table.lengths[-1]:  # ran out in the middle of a code
                raise FormatError(f"truncated Huffman data{where}: data ends after {i} of {n_values} samples")
            raise FormatError(f"invalid Huffman code{where} at bit {pos} (sample {i})")
        pos += entry.prefix_bits
        if entry.mode == 0:
            number = entry.value
            if not 1 <= number <= len(tables):
                raise FormatError(f"Huffman table switch{where} to table {number}, only {len(tables)} defined")
            table = tables[number - 1]
            continue
        extra = entry.total_bits - entry.prefix_bits
        if extra:
            if pos + extra > n_bits:
                raise FormatError(f"truncated Huffman data{where}: data ends after {i} of {n_values} samples")
            value = int(bits[pos : pos + extra], 2)
            if value >= 1 << (extra - 1):
                value -= 1 << extra
            pos += extra
        else:
            value = entry.value
        out[i] = value
        i += 1
    return out


def undo_differences(values: np.ndarray, encoding: int) -> np.ndarray:
    """Reverse SCP difference encoding (0 none, 1 first, 2 second difference), 16-bit arithmetic."""
    v = values.astype(np.int64)
    if encoding == 0 or v.size == 0:
        x = v
    elif encoding == 1:
        x = np.cumsum(v)
    elif encoding == 2:
        if v.size < 2:
            x = v
        else:
            # x[n] = d[n] + 2 x[n-1] - x[n-2]  <=>  e[n] = x[n] - x[n-1] = d[n] + e[n-1],
            # with e[1] = d[1] - d[0]
            increments = np.empty(v.size - 1, dtype=np.int64)
            increments[0] = v[1] - v[0]
            increments[1:] = v[2:]
            x = np.empty(v.size, dtype=np.int64)
            x[0] = v[0]
            x[1:] = v[0] + np.cumsum(np.cumsum(increments))
    else:
        raise FormatError(f"unknown SCP difference encoding {encoding}")
    # encoders work in 16-bit arithmetic: wrap exactly as they do
    return ((x + 32768) % 65536) - 32768
