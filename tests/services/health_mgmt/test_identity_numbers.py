"""身份证号 and mobile validation (GB 11643-1999 check digit)."""

from __future__ import annotations

import pytest

from services.health_mgmt.identity import birth_of, normalize_id_number, sex_of, validate_mobile


def test_known_valid_number() -> None:
    # The GB 11643-1999 worked example.
    assert normalize_id_number("11010519491231002x") == "11010519491231002X"
    assert sex_of("11010519491231002X") == "female"
    assert birth_of("11010519491231002X").isoformat() == "1949-12-31"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("110105194912310021", "check digit"),
        ("11010519491331002X", "check digit"),
        ("1101051949123100", "17 digits"),
        ("abcdefghijklmnopqr", "17 digits"),
    ],
)
def test_invalid_numbers_say_why(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_id_number(value)


def test_impossible_birth_date() -> None:
    from services.health_mgmt.identity import id_check_digit

    first17 = "11010519491331002"
    with pytest.raises(ValueError, match="impossible birth date"):
        normalize_id_number(first17 + id_check_digit(first17))


def test_mobile() -> None:
    assert validate_mobile("+86 138-0013-8000") == "13800138000"
    with pytest.raises(ValueError):
        validate_mobile("12800138000")
