"""Facility isolation in the archive: 李家镇 (tech_b) can neither find, read nor add to a study of 城关镇
(tech_a) — every path answers 404 exactly like a study that does not exist, searches come back empty —
through the gateway and directly at the service. The county hospital that reads for 城关镇 sees it; the city
hospital does not. Row-level security returns nothing even to a query without a facility filter."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt
import pytest

from common.auth import Principal
from tests.conftest import auth
from tests.imaging.imaging_support import make_instance, quiet_pydicom, read, sequence, stow, uid, value

quiet_pydicom()


@pytest.fixture(scope="module")
def study_of_a(platform, login) -> dict[str, str]:
    study, series = uid(), uid()
    files = [make_instance(study=study, series=series, instance_number=n, seed=n) for n in (1, 2)]
    r = stow(platform.gateway_url, login("tech_a"), files)
    assert r.status_code == 200, r.text
    return {"study": study, "series": series, "sop": str(read(files[0]).SOPInstanceUID)}


def _paths(ids: dict[str, str]) -> list[str]:
    s, se, i = ids["study"], ids["series"], ids["sop"]
    inst = f"/dicom-web/studies/{s}/series/{se}/instances/{i}"
    return [f"/dicom-web/studies/{s}", f"/dicom-web/studies/{s}/series/{se}", inst,
            f"/dicom-web/studies/{s}/metadata", f"/dicom-web/studies/{s}/series/{se}/metadata", f"{inst}/metadata",
            f"{inst}/frames/1", f"{inst}/bulkdata/7FE00010", f"/dicom-web/studies/{s}/series",
            f"/dicom-web/studies/{s}/instances", f"/dicom-web/studies/{s}/series/{se}/instances",
            f"/api/imaging/studies/{s}/archive",
            f"/wado?requestType=WADO&studyUID={s}&seriesUID={se}&objectUID={i}&contentType=application%2Fdicom"]


def _bases(platform: Any) -> list[str]:
    return [platform.gateway_url, platform.service_url("imaging")]


def test_other_township_gets_404_like_a_missing_study(platform, login, study_of_a) -> None:
    token = login("tech_b")
    missing = {"study": uid(), "series": uid(), "sop": uid()}
    for base in _bases(platform):
        for hidden_path, missing_path in zip(_paths(study_of_a), _paths(missing), strict=True):
            hidden = httpx.get(base + hidden_path, headers=auth(token))
            assert hidden.status_code == 404, f"{base}{hidden_path}: {hidden.status_code} {hidden.text[:200]}"
            assert hidden.json() == httpx.get(base + missing_path, headers=auth(token)).json()


def test_searches_come_back_empty(platform, login, study_of_a) -> None:
    token = login("tech_b")
    for base in _bases(platform):
        for level, key, uid_value in (("studies", "StudyInstanceUID", study_of_a["study"]),
                                      ("series", "SeriesInstanceUID", study_of_a["series"]),
                                      ("instances", "SOPInstanceUID", study_of_a["sop"])):
            r = httpx.get(f"{base}/dicom-web/{level}", params={key: uid_value}, headers=auth(token))
            assert r.status_code == 200 and r.json() == []


def test_other_township_cannot_add_to_the_study(platform, login, study_of_a) -> None:
    token = login("tech_b")
    into_url = stow(platform.gateway_url, token, [make_instance(study=study_of_a["study"])],
                    study=study_of_a["study"])
    assert into_url.status_code == 404 and into_url.json()["error"] == "not_found"
    r = stow(platform.gateway_url, token, [make_instance(study=study_of_a["study"]),
                                           make_instance(sop=study_of_a["sop"])])
    assert r.status_code == 409
    reasons = sorted(value(i, "00081197") for i in sequence(r.json(), "00081198"))
    assert reasons == [0x0111, 0x0124]
    owner = httpx.get(f"{platform.gateway_url}/dicom-web/studies", params={"StudyInstanceUID": study_of_a["study"]},
                      headers=auth(login("tech_a"))).json()
    assert value(owner[0], "00201208") == 2


def test_reading_centre_sees_it_and_the_city_hospital_does_not(platform, login, study_of_a) -> None:
    path = f"{platform.gateway_url}/dicom-web/studies/{study_of_a['study']}/metadata"
    assert len(httpx.get(path, headers=auth(login("specialist"))).json()) == 2
    assert httpx.get(path, headers=auth(login("specialist_city"))).status_code == 404
    search = httpx.get(f"{platform.gateway_url}/dicom-web/studies", headers=auth(login("analyst")))
    assert search.status_code == 403


async def test_row_level_security_is_a_second_wall(db, login, study_of_a) -> None:
    claims = jwt.decode(login("tech_b"), options={"verify_signature": False})
    other = Principal(user_id=uuid.uuid4(), username="probe", roles=frozenset({"technician"}),
                      facility_id=uuid.UUID(claims["fac"]))
    async with db.transaction(other) as conn:
        for table, column, key in (("studies", "study_instance_uid", "study"),
                                   ("series", "series_instance_uid", "series"),
                                   ("instances", "sop_instance_uid", "sop")):
            count = await conn.fetchval(f"SELECT count(*) FROM imaging.{table} WHERE {column} = $1",
                                        study_of_a[key])
            assert count == 0, table
        assert await conn.execute("UPDATE imaging.studies SET study_description = 'x'"
                                  " WHERE study_instance_uid = $1", study_of_a["study"]) == "UPDATE 0"
    async with db.transaction() as conn:  # no principal at all: nothing is visible
        assert await conn.fetchval("SELECT count(*) FROM imaging.instances") == 0
