"""Chinese personal identifiers: 居民身份证号 (GB 11643-1999) and mainland mobile numbers."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def id_check_digit(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normalize_id_number(value: str) -> str:
    """Upper-case and validate an 18-character resident ID number; raises ValueError with the reason."""
    v = value.strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", v):
        raise ValueError("身份证号 must be 17 digits followed by a digit or X")
    if id_check_digit(v[:17]) != v[17]:
        raise ValueError("身份证号 check digit does not match")
    birth_of(v)  # raises on an impossible date
    return v


def birth_of(id_number: str) -> date:
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError as exc:
        raise ValueError("身份证号 carries an impossible birth date") from exc


def sex_of(id_number: str) -> Literal["male", "female"]:
    return "male" if int(id_number[16]) % 2 == 1 else "female"


def validate_mobile(value: str) -> str:
    v = re.sub(r"[\s-]", "", value)
    if v.startswith("+86"):
        v = v[3:]
    if not _MOBILE.fullmatch(v):
        raise ValueError("phone must be a mainland mobile number: 11 digits starting 13-19")
    return v
