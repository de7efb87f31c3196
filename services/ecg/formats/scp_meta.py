"""SCP-ECG metadata sections: 1 (patient/acquisition tags), 7 (global measurements), 8/11 (statements).

Lead codes (section 3) are shared with the DICOM reader, whose channel sources use the same
SCP-ECG code table ("5.6.3-9-<n>").
"""

from __future__ import annotations

import struct
from datetime import date, datetime, timedelta, timezone
from typing import Any

from services.ecg.formats.model import Device, FormatError, clean_text, put

_NAMED = {
    1: "I",
    2: "II",
    9: "V7",
    10: "V2R",
    11: "V3R",
    12: "V4R",
    13: "V5R",
    14: "V6R",
    15: "V7R",
    16: "X",
    17: "Y",
    18: "Z",
    19: "CC5",
    20: "CM5",
    21: "LA",
    22: "RA",
    23: "LL",
    24: "I_FRANK",
    25: "E",
    26: "C",
    27: "A",
    28: "M",
    29: "F",
    30: "H",
    61: "III",
    62: "aVR",
    63: "aVL",
    64: "aVF",
    65: "-aVR",
    66: "V8",
    67: "V9",
    68: "V8R",
    69: "V9R",
    70: "NEHB_D",
    71: "NEHB_A",
    72: "NEHB_J",
    73: "DEFIB",
    74: "EXT_PACING",
    75: "A1",
    76: "A2",
    77: "A3",
    78: "A4",
}
_NAMED.update({2 + k: f"V{k}" for k in range(1, 7)})  # 3..8 -> V1..V6
_NAMED.update({30 + k: f"{_NAMED[k]}-CAL" for k in range(1, 31)})  # 31..60 calibration signals
_NAMED.update({79: "V8-CAL", 80: "V9-CAL", 81: "V8R-CAL", 82: "V9R-CAL", 83: "NEHB_D-CAL", 84: "NEHB_A-CAL"})
_NAMED[85] = "NEHB_J-CAL"


def scp_lead_name(code: int) -> str:
    return _NAMED.get(code, f"SCP{code}")


MANUFACTURERS = {
    1: "Burdick",
    2: "Cambridge Heart",
    3: "Compumed",
    4: "Datamed",
    5: "Fukuda",
    6: "Hewlett-Packard",
    7: "Marquette Electronics",
    8: "Mortara Instruments",
    9: "Nihon Kohden",
    10: "Okin",
    11: "Quinton",
    12: "Siemens",
    13: "Spacelabs",
    14: "Telemed",
    15: "Hellige",
    16: "ESA-OTE",
    17: "Schiller",
    18: "Picker-Schwarzer",
    19: "Elettronica-Trentina",
    20: "Zwönitz",
}
MISSING = {29999, 29998, 19999}  # not computed / rejected / wave absent
_AGE_UNITS = {1: 1.0, 2: 1 / 12, 3: 7 / 365.25, 4: 1 / 365.25, 5: 1 / 8766}


def parse_tags(body: bytes) -> list[tuple[int, bytes]]:
    tags: list[tuple[int, bytes]] = []
    pos = 0
    while pos + 3 <= len(body):
        tag, length = struct.unpack_from("<BH", body, pos)
        pos += 3
        if tag == 255:
            return tags
        if pos + length > len(body):
            raise FormatError(f"truncated section 1: tag {tag} needs {length} bytes, {len(body) - pos} left")
        tags.append((tag, body[pos : pos + length]))
        pos += length
    return tags  # tolerated: no terminator tag


def _date(value: bytes) -> date | None:
    if len(value) < 4:
        return None
    year, month, day = struct.unpack_from("<HBB", value, 0)
    try:
        return date(year, month, day) if year else None
    except ValueError:
        return None


def _machine(value: bytes) -> Device:
    if len(value) < 14:
        return Device()
    manufacturer_code = value[7]
    model = clean_text(value[8:14])
    strings: list[str | None] = []
    if len(value) > 35:  # byte 35 = length of the analysing-program revision string that follows
        strings = [clean_text(s) for s in value[36 + value[35] :].split(b"\x00")]
    serial, _system_sw, scp_sw, manufacturer = (strings + [None] * 4)[:4]
    return Device(
        manufacturer=manufacturer or MANUFACTURERS.get(manufacturer_code),
        model=model,
        serial=serial if serial and serial.lower() != "unknown" else None,
        software=scp_sw,
    )


def parse_section1(body: bytes) -> tuple[dict[str, Any], Device, datetime | None, dict[str, Any]]:
    """-> patient, acquiring device, start time, extra."""
    patient: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    device = Device()
    acq_date: date | None = None
    acq_time: tuple[int, int, int] | None = None
    tz_minutes: int | None = None
    names: dict[int, str] = {}
    for tag, value in parse_tags(body):
        if tag in (0, 1, 3):
            text = clean_text(value)
            if text:
                names[tag] = text
        elif tag == 2:
            put(patient, "id", clean_text(value))
        elif tag == 4 and len(value) >= 3:
            amount, unit = struct.unpack_from("<HB", value, 0)
            if amount and unit in _AGE_UNITS:
                patient["age"] = amount if unit == 1 else round(amount * _AGE_UNITS[unit], 2)
        elif tag == 5:
            put(patient, "birth_date", _date(value))
        elif tag == 6 and len(value) >= 3:
            amount, unit = struct.unpack_from("<HB", value, 0)
            factor = {1: 1.0, 2: 2.54, 3: 0.1}.get(unit)
            if amount and factor:
                patient["height_cm"] = round(amount * factor, 1)
        elif tag == 7 and len(value) >= 3:
            amount, unit = struct.unpack_from("<HB", value, 0)
            factor = {1: 1.0, 2: 0.001, 3: 0.45359237, 4: 0.028349523}.get(unit)
            if amount and factor:
                patient["weight_kg"] = round(amount * factor, 1)
        elif tag == 8 and value:
            put(patient, "sex", {1: "M", 2: "F"}.get(value[0]))
        elif tag == 14:
            device = _machine(value)
        elif tag == 25:
            acq_date = _date(value)
        elif tag == 26 and len(value) >= 3:
            acq_time = (value[0], value[1], value[2])
        elif tag == 27 and len(value) >= 2:
            put(extra, "highpass_hz", struct.unpack_from("<H", value)[0] / 100, lambda v: v > 0)
        elif tag == 28 and len(value) >= 2:
            put(extra, "lowpass_hz", struct.unpack_from("<H", value)[0], lambda v: v > 0)
        elif tag == 31:
            put(extra, "sequence_number", clean_text(value))
        elif tag == 34 and len(value) >= 2:
            (offset,) = struct.unpack_from("<h", value, 0)
            if offset != 0x7FFF and -780 <= offset <= 780:
                tz_minutes = offset
    name = " ".join(names[t] for t in (1, 0, 3) if t in names)
    put(patient, "name", name)
    start: datetime | None = None
    if acq_date is not None:
        h, m, s = acq_time or (0, 0, 0)
        try:
            start = datetime(acq_date.year, acq_date.month, acq_date.day, h, m, s)
        except ValueError:
            start = None
        if start is not None and tz_minutes is not None:
            start = start.replace(tzinfo=timezone(timedelta(minutes=tz_minutes)))
    return patient, device, start, extra


def parse_section7(body: bytes) -> dict[str, Any]:
    """Global measurements of reference beat type 0 (ms, degrees, bpm)."""
    out: dict[str, Any] = {}
    if len(body) < 6:
        return out
    n_qrs, n_spikes, rr, pp = struct.unpack_from("<BBHH", body, 0)
    put(out, "rr_ms", rr, lambda v: v not in MISSING and 0 < v < 10000)
    put(out, "pp_ms", pp, lambda v: v not in MISSING and 0 < v < 10000)
    pos = 6
    if n_qrs >= 1 and len(body) >= pos + 16:
        p_on, p_off, qrs_on, qrs_off, t_off = struct.unpack_from("<5H", body, pos)
        axes = struct.unpack_from("<3h", body, pos + 10)

        def ok(*values: int) -> bool:
            return all(v not in MISSING for v in values)

        if ok(p_on, p_off) and p_off > p_on:
            out["p_ms"] = p_off - p_on
        if ok(p_on, qrs_on) and qrs_on > p_on:
            out["pr_ms"] = qrs_on - p_on
        if ok(qrs_on, qrs_off) and qrs_off > qrs_on:
            out["qrs_ms"] = qrs_off - qrs_on
        if ok(qrs_on, t_off) and t_off > qrs_on:
            out["qt_ms"] = t_off - qrs_on
        for key, axis in zip(("p_axis_deg", "qrs_axis_deg", "t_axis_deg"), axes, strict=True):
            put(out, key, axis, lambda v: -360 <= v <= 360)
    pos += 16 * n_qrs + 4 * n_spikes + 6 * n_spikes
    if len(body) >= pos + 2:
        (n_complexes,) = struct.unpack_from("<H", body, pos)
        pos += 2 + n_complexes
        if len(body) >= pos + 7:
            vent, atrial, qtc, formula = struct.unpack_from("<HHHB", body, pos)
            put(out, "hr_bpm", vent, lambda v: v not in MISSING and 0 < v < 400)
            put(out, "atrial_rate_bpm", atrial, lambda v: v not in MISSING and 0 < v < 1000)
            put(out, "qtc_ms", qtc, lambda v: v not in MISSING and 0 < v < 2000)
            if "qtc_ms" in out:
                put(out, "qtc_formula", {1: "Bazett", 2: "Hodges"}.get(formula))
    if "hr_bpm" not in out and "rr_ms" in out:
        out["hr_bpm"] = round(60000 / out["rr_ms"])
    return out


def parse_statements(body: bytes, section: int) -> list[str]:
    """Section 8 (full-text) or 11 (universal statement codes) interpretation statements."""
    if len(body) < 9:
        return []
    n_statements = body[8]
    pos = 9
    statements: list[str] = []
    for _ in range(n_statements):
        if pos + 3 > len(body):
            raise FormatError(f"truncated section {section}: statement list ends early")
        _seq, length = struct.unpack_from("<BH", body, pos)
        pos += 3
        value = body[pos : pos + length]
        pos += length
        if section == 11 and value[:1] in (b"\x01", b"\x02", b"\x03"):
            value = value[1:]
        parts = [clean_text(p) for p in value.split(b"\x00")]
        text = "; ".join(p for p in parts if p)
        if text:
            statements.append(text)
    return statements
