"""Reporting periods in Asia/Shanghai, named as DHIS2 names them: ``20260305``, ``2026W10``, ``202603``."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from common.errors import Invalid

TZ = ZoneInfo("Asia/Shanghai")
PeriodType = Literal["day", "week", "month"]
DEFAULT_SPAN: dict[str, int] = {"day": 30, "week": 12, "month": 12}
MAX_PERIODS = 400

_DAY = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_WEEK = re.compile(r"^(\d{4})W(\d{1,2})$")
_MONTH = re.compile(r"^(\d{4})(\d{2})$")


def today() -> date:
    return datetime.now(TZ).date()


def align(d: date, period: PeriodType) -> date:
    """The first day of the period that contains ``d`` (weeks start on Monday, as ISO weeks do)."""
    if period == "day":
        return d
    if period == "week":
        return d - timedelta(days=d.weekday())
    return d.replace(day=1)


def next_start(start: date, period: PeriodType) -> date:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return date(start.year + (start.month == 12), start.month % 12 + 1, 1)


def period_id(start: date, period: PeriodType) -> str:
    if period == "day":
        return start.strftime("%Y%m%d")
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}W{week}"
    return start.strftime("%Y%m")


def parse_period_id(text: str) -> tuple[PeriodType, date, date]:
    """``2026W10`` → ("week", its Monday, the next Monday); likewise days and months."""
    try:
        if m := _DAY.match(text):
            start = date(int(m[1]), int(m[2]), int(m[3]))
            return "day", start, next_start(start, "day")
        if m := _WEEK.match(text):
            start = date.fromisocalendar(int(m[1]), int(m[2]), 1)
            return "week", start, next_start(start, "week")
        if m := _MONTH.match(text):
            start = date(int(m[1]), int(m[2]), 1)
            return "month", start, next_start(start, "month")
    except ValueError:
        pass
    raise Invalid(f"period {text!r} is not a day (20260305), ISO week (2026W10) or month (202603)")


def resolve_range(period: PeriodType, first: date | None, last: date | None) -> tuple[date, date]:
    """Whole periods covering the local dates ``first``..``last`` (inclusive): (start, end exclusive).

    Defaults: the last few periods up to today. At most MAX_PERIODS periods.
    """
    end_day = last or today()
    end = next_start(align(end_day, period), period)
    if first is None:
        start = align(end_day, period)
        for _ in range(DEFAULT_SPAN[period] - 1):
            start = align(start - timedelta(days=1), period)
    else:
        start = align(first, period)
    if start >= end:
        raise Invalid("'from' must not be after 'to'")
    count, cursor = 0, start
    while cursor < end:
        count += 1
        if count > MAX_PERIODS:
            raise Invalid(f"at most {MAX_PERIODS} periods per request: narrow the range or use a longer period")
        cursor = next_start(cursor, period)
    return start, end


def local_midnight(d: date) -> datetime:
    """The instant a local (Asia/Shanghai) date begins."""
    return datetime.combine(d, time(0), tzinfo=TZ)
