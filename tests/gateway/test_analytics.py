"""The gateway's analytics through the real gateway process: intake, scoping, periods, indicators, drill-down.

Events are posted with dates in years nobody else uses (2003–2006) and removed after each test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from common.config import platform_settings
from gateway.identity.seed import CHENGGUAN, CITY_HOSPITAL, COUNTY_HOSPITAL, DEMO_FACILITIES, DONGCUN, LIJIA
from tests.conftest import auth

FAC = {f.code: f.id for f in DEMO_FACILITIES}


def ev(event_type: str, facility: str | None, when: str, subject_type: str = "study", **payload: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "event_type": event_type,
        "facility_id": str(FAC[facility]) if facility else None,
        "subject_type": subject_type,
        "subject_id": f"{subject_type}-{uuid.uuid4().hex[:6]}",
        "payload": payload,
        "occurred_at": when,
    }


class Intake:
    def __init__(self, url: str):
        self.url = url
        self.posted: list[str] = []

    def post(self, events: list[dict[str, Any]], source: str = "imaging", key: str | None = None) -> httpx.Response:
        self.posted.extend(e["id"] for e in events if isinstance(e, dict) and "id" in e)
        headers = {"X-Internal-Key": platform_settings().internal_api_key if key is None else key}
        return httpx.post(
            f"{self.url}/internal/events", json={"source": source, "events": events}, headers=headers, timeout=10
        )


@pytest_asyncio.fixture(loop_scope="session")
async def intake(platform: Any, admin_db: Any) -> AsyncIterator[Intake]:
    box = Intake(platform.gateway_url)
    yield box
    async with admin_db.transaction() as conn:
        await conn.execute(
            "DELETE FROM gateway.analytics_events WHERE event_id = ANY($1::uuid[])", [uuid.UUID(i) for i in box.posted]
        )


async def stored(admin_db: Any, ids: list[str]) -> list[Any]:
    async with admin_db.transaction() as conn:
        return await conn.fetch(
            "SELECT * FROM gateway.analytics_events WHERE event_id = ANY($1::uuid[]) ORDER BY id",
            [uuid.UUID(i) for i in ids],
        )


def get(platform: Any, token: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{platform.gateway_url}{path}", params=params, headers=auth(token), timeout=10)


async def test_intake_needs_the_internal_key(intake: Intake, admin_db: Any) -> None:
    batch = [ev("imaging.study_received", CHENGGUAN, "2003-01-05T02:00:00Z")]
    assert intake.post(batch, key="").status_code == 401
    wrong = intake.post(batch, key="not-the-key")
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"
    assert await stored(admin_db, [batch[0]["id"]]) == []


async def test_intake_is_idempotent(intake: Intake, admin_db: Any) -> None:
    batch = [
        ev("imaging.study_received", CHENGGUAN, "2003-01-05T02:00:00Z"),
        ev("imaging.report_signed", CHENGGUAN, "2003-01-05T03:00:00Z", on_time=True),
    ]
    first = intake.post(batch)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 2, "duplicates": 0}
    assert intake.post(batch).json() == {"accepted": 0, "duplicates": 2}
    assert intake.post([*batch, batch[0]]).json() == {"accepted": 0, "duplicates": 3}
    assert len(await stored(admin_db, [e["id"] for e in batch])) == 2
    # The same event id from another service is another event.
    assert intake.post([batch[0]], source="ecg").json() == {"accepted": 1, "duplicates": 0}


def test_intake_rejects_malformed_batches(intake: Intake, platform: Any) -> None:
    good = ev("imaging.study_received", CHENGGUAN, "2003-01-05T02:00:00Z")
    assert intake.post([good], source="payroll").status_code == 422
    assert intake.post([{**good, "occurred_at": "2003-01-05T02:00:00"}]).status_code == 422
    assert intake.post([{**good, "event_type": "Study Received"}]).status_code == 422
    raw = httpx.post(
        f"{platform.gateway_url}/internal/events",
        content=b"{not json",
        headers={"X-Internal-Key": platform_settings().internal_api_key, "Content-Type": "application/json"},
        timeout=10,
    )
    assert raw.status_code == 400


async def test_intake_drops_identifier_keys(intake: Intake, admin_db: Any) -> None:
    e = ev(
        "imaging.study_received",
        CHENGGUAN,
        "2003-01-06T02:00:00Z",
        modality="CT",
        patient_name="张三",
        detail={"phone": "13800138000", "series": 3},
    )
    assert intake.post([e]).status_code == 200
    [row] = await stored(admin_db, [e["id"]])
    assert row["payload"] == {"modality": "CT", "detail": {"series": 3}}


async def test_counts_cut_periods_in_shanghai_time(intake: Intake, platform: Any, login: Callable[[str], str]) -> None:
    kind = f"imaging.t{uuid.uuid4().hex[:8]}"
    intake.post(
        [
            ev(kind, CHENGGUAN, "2003-03-31T15:59:59Z"),  # 23:59:59 on 31 March in Shanghai
            ev(kind, CHENGGUAN, "2003-03-31T16:00:00Z"),  # 00:00 on 1 April in Shanghai
            ev(kind, LIJIA, "2003-04-15T04:00:00Z"),
        ]
    )
    token = login("analyst")
    months = get(
        platform,
        token,
        "/api/analytics/event-counts",
        period="month",
        **{"from": "2003-03-01"},
        to="2003-04-30",
        event_type=kind,
    )
    assert months.status_code == 200, months.text
    got = {(r["period"], r["facility_name"]): r["count"] for r in months.json()["rows"]}
    assert got == {("200303", "城关镇卫生院"): 1, ("200304", "城关镇卫生院"): 1, ("200304", "李家镇卫生院"): 1}
    days = get(
        platform,
        token,
        "/api/analytics/event-counts",
        period="day",
        **{"from": "2003-03-31"},
        to="2003-04-01",
        event_type=kind,
        by_facility="false",
    ).json()
    assert [(r["period"], r["count"], r["facility_id"]) for r in days["rows"]] == [
        ("20030331", 1, None),
        ("20030401", 1, None),
    ]
    weeks = get(
        platform,
        token,
        "/api/analytics/event-counts",
        period="week",
        **{"from": "2003-03-31"},
        to="2003-04-20",
        event_type=kind,
        by_facility="false",
    ).json()
    assert [(r["period"], r["start"], r["count"]) for r in weeks["rows"]] == [
        ("2003W14", "2003-03-31", 2),
        ("2003W16", "2003-04-14", 1),
    ]


def test_scope_follows_the_facility_tree(intake: Intake, platform: Any, login: Callable[[str], str]) -> None:
    kind = f"consult.t{uuid.uuid4().hex[:8]}"
    intake.post(
        [
            ev(kind, CITY_HOSPITAL, "2004-02-02T02:00:00Z"),
            ev(kind, COUNTY_HOSPITAL, "2004-02-02T02:00:00Z"),
            ev(kind, DONGCUN, "2004-02-02T02:00:00Z"),
            ev(kind, None, "2004-02-02T02:00:00Z"),
        ],
        source="consult",
    )
    params = {"period": "month", "from": "2004-02-01", "to": "2004-02-29", "event_type": kind}

    def facilities(user: str, **extra: Any) -> set[str | None]:
        r = get(platform, login(user), "/api/analytics/event-counts", **params, **extra)
        assert r.status_code == 200, r.text
        return {row["facility_id"] for row in r.json()["rows"]}

    city, county, village = (str(FAC[c]) for c in (CITY_HOSPITAL, COUNTY_HOSPITAL, DONGCUN))
    assert facilities("analyst") == {city, county, village}
    assert facilities("admin") == {city, county, village, None}
    assert facilities("hospital_admin") == {county, village}
    assert facilities("analyst", facility_id=str(FAC[CHENGGUAN])) == {village}
    denied = get(platform, login("hospital_admin"), "/api/analytics/event-counts", **params, facility_id=city)
    assert denied.status_code == 403
    assert get(platform, login("doctor_a"), "/api/analytics/event-counts", **params).status_code == 403
    assert get(platform, login("specialist"), "/api/analytics/indicators").status_code == 403
    assert httpx.get(f"{platform.gateway_url}/api/analytics/indicators", timeout=10).status_code == 401


async def test_indicator_values_and_drill_down(intake: Intake, platform: Any, login: Callable[[str], str]) -> None:
    signed = [
        ev("imaging.report_signed", CHENGGUAN, "2005-05-10T02:00:00Z", on_time=True),
        ev("imaging.report_signed", CHENGGUAN, "2005-05-11T02:00:00Z", on_time=True),
        ev("imaging.report_signed", CHENGGUAN, "2005-05-12T02:00:00Z", on_time=False),
        ev("imaging.report_signed", LIJIA, "2005-05-31T17:00:00Z", subject_type="patient", on_time=True),
    ]
    assert intake.post(signed).json()["accepted"] == 4
    token = login("analyst")
    r = get(
        platform,
        token,
        "/api/analytics/indicators/imaging_on_time_rate",
        period="month",
        **{"from": "2005-04-01"},
        to="2005-06-30",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["indicator"]["numerator"]["where"] == {"on_time": True}
    totals = [
        (x["period"], x["numerator"], x["denominator"], x["value"]) for x in body["rows"] if x["facility_id"] is None
    ]
    # The Lijia report was signed at 01:00 on 1 June, Shanghai time.
    assert totals == [("200504", 0, 0, None), ("200505", 2, 3, 66.67), ("200506", 1, 1, 100.0)]
    per_facility = {(x["period"], x["facility_name"]): x["value"] for x in body["rows"] if x["facility_id"]}
    assert per_facility == {("200505", "城关镇卫生院"): 66.67, ("200506", "李家镇卫生院"): 100.0}

    def drill(part: str, **extra: Any) -> dict[str, Any]:
        d = get(platform, token, "/api/analytics/indicators/imaging_on_time_rate/events", part=part, **extra)
        assert d.status_code == 200, d.text
        return dict(d.json())

    first = drill("numerator", period="200505", limit=1)
    assert first["next_cursor"] is not None
    second = drill("numerator", period="200505", limit=1, after=first["next_cursor"])
    assert second["next_cursor"] is None
    assert [e["event_id"] for e in first["events"] + second["events"]] == [signed[0]["id"], signed[1]["id"]]
    assert [e["event_id"] for e in drill("denominator", period="200505")["events"]] == [e["id"] for e in signed[:3]]
    june = drill("numerator", period="200506")["events"]
    assert [(e["event_id"], e["subject_type"], e["subject_id"]) for e in june] == [(signed[3]["id"], "patient", None)]
    assert "payload" not in june[0]
    listed = get(
        platform,
        token,
        "/api/analytics/events",
        event_type="imaging.report_signed",
        **{"from": "2005-05-01"},
        to="2005-05-31",
    ).json()
    assert [e["event_id"] for e in listed["events"]] == [e["id"] for e in signed[:3]]


async def test_indicator_catalogue_and_errors(platform: Any, login: Callable[[str], str]) -> None:
    token = login("analyst")
    catalogue = get(platform, token, "/api/analytics/indicators").json()
    ids = {i["id"] for i in catalogue}
    assert {"remote_report_rate", "imaging_on_time_rate", "consult_acceptance_rate", "hypertension_control_rate"} <= ids
    assert all(i["name_zh"] and i["numerator"]["event_types"] for i in catalogue)
    assert get(platform, token, "/api/analytics/indicators/nope").status_code == 404
    bad_period = get(platform, token, "/api/analytics/indicators/imaging_report_rate/events", period="2005-13")
    assert bad_period.status_code == 422
    too_long = get(
        platform, token, "/api/analytics/event-counts", period="day", **{"from": "2000-01-01"}, to="2005-01-01"
    )
    assert too_long.status_code == 422
    assert get(platform, token, "/api/analytics/event-counts", period="year").status_code == 422


@pytest.mark.parametrize("user", ["analyst", "hospital_admin", "admin"])
async def test_default_window_answers(platform: Any, login: Callable[[str], str], user: str) -> None:
    r = get(platform, login(user), "/api/analytics/indicators/remote_report_rate", period="week")
    assert r.status_code == 200, r.text
    assert len([x for x in r.json()["rows"] if x["facility_id"] is None]) == 12
