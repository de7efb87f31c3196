"""QIDO-RS matching (PS3.18 8.3.4, PS3.4 C.2.2.2) turned into SQL conditions on the index columns.

- Single value matching; wildcards ``*`` and ``?`` on text attributes (not on dates, times or UIDs).
- List of UID matching (``,`` or ``\\`` separated) on UIDs, and on ModalitiesInStudy / Modality.
- Range matching on dates and times: ``20240101-20241231``, ``-20241231``, ``20240101-``.
- Every condition an index should serve uses leakproof operators (=, <, >=, = ANY): under row-level security
  PostgreSQL uses nothing else as an index condition, so a prefix wildcard is sent as a range plus its LIKE.
- Person names (PatientName, ReferringPhysicianName) match case-insensitively against each component group
  (alphabetic, ideographic, phonetic) alone: ``王*`` finds ``Wang^XiaoDong=王^小東``. A value with ``=``
  matches the groups it names. With ``fuzzymatching=true`` a name value also matches any name component
  that starts with it (``xiao`` finds ``Wang^XiaoDong``).
- StudyDescription and SeriesDescription match case-insensitively (PS3.4 leaves that to the archive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from common.errors import BadRequest
from services.imaging.index import normalize_name_group, parse_da, parse_int, parse_tm


@dataclass(frozen=True)
class Condition:
    sql: str            # with {0}, {1}... where the arguments go
    args: tuple[Any, ...]


def has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def like_pattern(value: str) -> str:
    """DICOM wildcards to a LIKE pattern (backslash escapes)."""
    out = []
    for ch in value:
        if ch in "\\%_":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def regex_pattern(value: str, any_char: str) -> str:
    """DICOM wildcards to a regular expression body; ``any_char`` is what ``*``/``?`` may span."""
    out = []
    for ch in value:
        if ch == "*":
            out.append(f"{any_char}*")
        elif ch == "?":
            out.append(any_char)
        else:
            out.append(re.escape(ch))
    return "".join(out)


def uid_list(value: str) -> list[str]:
    return [v.strip() for v in re.split(r"[,\\]", value) if v.strip()]


def prefix_range(value: str) -> tuple[str, str] | None:
    """[lo, hi) of the strings that start with the literal prefix of a wildcard value (byte order: COLLATE "C").

    Under row-level security LIKE cannot be an index condition (it is not leakproof); these comparisons can.
    """
    cut = min((i for i, ch in enumerate(value) if ch in "*?"), default=len(value))
    prefix = value[:cut]
    if not prefix or ord(prefix[-1]) >= 0x10FFFF:
        return None
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def text_condition(column: str, value: str, *, lower: bool = False, c_collated: bool = False) -> Condition:
    """Single value or wildcard matching; on a COLLATE "C" column a wildcard's prefix becomes a btree range."""
    v = value.lower() if lower else value
    if not has_wildcard(v):
        return Condition(f"{column} = {{0}}", (v,))
    bounds = prefix_range(v) if c_collated else None
    if bounds is None:
        return Condition(f"{column} LIKE {{0}}", (like_pattern(v),))
    return Condition(f"{column} >= {{1}} AND {column} < {{2}} AND {column} LIKE {{0}}", (like_pattern(v), *bounds))


def _range(value: str, parse: Any, what: str) -> tuple[Any, Any]:
    start, sep, end = value.partition("-")
    if not sep:
        single = parse(value)
        if single is None:
            raise BadRequest(f"{what}: {value!r} is not a valid value")
        return single, single
    lo = parse(start) if start.strip() else None
    hi = parse(end) if end.strip() else None
    if (start.strip() and lo is None) or (end.strip() and hi is None) or (lo is None and hi is None):
        raise BadRequest(f"{what}: {value!r} is not a valid range (use 20240101-20241231, -20241231 or 20240101-)")
    return lo, hi


def date_condition(column: str, value: str, what: str) -> Condition:
    lo, hi = _range(value.strip(), parse_da, what)
    return _between(column, lo, hi, "date")


def time_condition(column: str, value: str, what: str) -> Condition:
    text = value.strip()
    lo, hi = _range(text, parse_tm, what)
    if "-" not in text and lo is not None:  # a single partial time ("08", "0830") covers its whole span
        digits = len(text.split(".")[0].replace(":", ""))
        hi = {2: time(lo.hour, 59, 59, 999999), 4: time(lo.hour, lo.minute, 59, 999999)}.get(digits, lo)
    elif hi is not None and "." not in text.partition("-")[2]:
        hi = hi.replace(microsecond=999999)
    return _between(column, lo, hi, "time")


def _between(column: str, lo: date | time | None, hi: date | time | None, cast: str) -> Condition:
    if lo is not None and hi is not None:
        return Condition(f"{column} BETWEEN {{0}}::{cast} AND {{1}}::{cast}", (lo, hi))
    if lo is not None:
        return Condition(f"{column} >= {{0}}::{cast}", (lo,))
    return Condition(f"{column} <= {{0}}::{cast}", (hi,))


def int_condition(column: str, value: str, what: str) -> Condition:
    number = parse_int(value)
    if number is None:
        raise BadRequest(f"{what}: {value!r} is not an integer")
    return Condition(f"{column} = {{0}}", (number,))


def list_condition(column: str, value: str) -> Condition:
    return Condition(f"{column} = ANY({{0}}::text[])", (uid_list(value),))


def patient_name_condition(value: str, fuzzy: bool, prefix: str = "s") -> Condition:
    """PatientName against the study's normalised component groups (btree prefix or trigram index)."""
    text = value.strip()
    columns = (f"{prefix}.pn_alpha", f"{prefix}.pn_ideographic", f"{prefix}.pn_phonetic")
    if "=" in text:
        parts, args = [], []
        for column, group in zip(columns, text.split("=")[:3], strict=False):
            g = normalize_name_group(group)
            if g:
                args.append(like_pattern(g))
                parts.append(f"{column} LIKE {{{len(args) - 1}}}")
        if not parts:
            raise BadRequest("PatientName: the value names no component group")
        return Condition("(" + " AND ".join(parts) + ")", tuple(args))
    g = normalize_name_group(text)
    if fuzzy:
        return Condition(f"{prefix}.pn_search ~ {{0}}", ("(^|[=^ ])" + regex_pattern(g, "[^=]"),))
    pattern = like_pattern(g)
    if not has_wildcard(g):
        return Condition("(" + " OR ".join(f"{c} = {{0}}" for c in columns) + ")", (g,))
    any_group = " OR ".join(f"{c} LIKE {{0}}" for c in columns)
    bounds = prefix_range(g)
    if bounds is None:  # a leading wildcard: a filter over the caller's studies
        return Condition(f"({any_group})", (pattern,))
    # Leakproof ranges first (a BitmapOr of the three (facility_id, pn_*) indexes), then the exact pattern.
    ranges = " OR ".join(f"({c} >= {{1}} AND {c} < {{2}})" for c in columns)
    return Condition(f"({ranges}) AND ({any_group})", (pattern, *bounds))


def person_search_condition(column: str, value: str, fuzzy: bool) -> Condition:
    """A PN matched against a '='-joined lower-cased search column (ReferringPhysicianName)."""
    g = normalize_name_group(value.strip().split("=")[0])
    if fuzzy:
        return Condition(f"{column} ~ {{0}}", ("(^|[=^ ])" + regex_pattern(g, "[^=]"),))
    return Condition(f"{column} ~ {{0}}", ("(^|=)" + regex_pattern(g, "[^=]") + "(=|$)",))
