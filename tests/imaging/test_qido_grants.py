"""QIDO-RS over grants: a consult specialist (specialist_city, 市医院, who does not see 城关镇's studies) finds
the one study a grant opens to them through the studies search, and its series and instances; not the
owner's other studies, and nothing once the grant is withdrawn. A grant to a user serves that user only."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from common.config import platform_settings
from tests.conftest import auth
from tests.imaging.imaging_support import make_instance, stow, uid


@pytest.fixture(scope="module")
def studies(platform, login) -> list[str]:
    """Two studies of 城关镇 with the same patient, so a search by PatientID could return both."""
    patient = f"PID-GRANT-{uid()[-8:]}"
    out = []
    for _ in range(2):
        study = uid()
        r = stow(platform.gateway_url, login("tech_a"), [make_instance(study=study, patient_id=patient)])
        assert r.status_code == 200, r.text
        out.append(study)
    return [patient, *out]


def _search(platform: Any, token: str, path: str = "/studies", **params: Any) -> list[dict[str, Any]]:
    r = httpx.get(f"{platform.gateway_url}/dicom-web{path}", params=params, timeout=30,
                  headers={**auth(token), "Accept": "application/dicom+json"})
    assert r.status_code in (200, 204), r.text
    return list(r.json()) if r.status_code == 200 and r.content else []


def _uids(items: list[dict[str, Any]], tag: str = "0020000D") -> set[str]:
    return {i[tag]["Value"][0] for i in items}


def _grant(platform: Any, **body: Any) -> str:
    key = {"X-Internal-Key": platform_settings().internal_api_key}
    r = httpx.post(f"{platform.service_url('imaging')}/api/imaging/grants", json=body, headers=key, timeout=30)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _withdraw(platform: Any, grant_id: str) -> None:
    key = {"X-Internal-Key": platform_settings().internal_api_key}
    r = httpx.delete(f"{platform.service_url('imaging')}/api/imaging/grants", params={"id": grant_id},
                     headers=key, timeout=30)
    assert r.status_code == 204


def test_the_grantee_finds_the_granted_study_only(platform, login, studies) -> None:
    patient, granted, other = studies
    city = login("specialist_city")
    assert _search(platform, city, PatientID=patient) == []
    claims = jwt.decode(city, options={"verify_signature": False})
    grant = _grant(platform, study_uid=granted, grantee_user_id=claims["sub"], reason="consult", reference="c-q")
    try:
        assert _uids(_search(platform, city, PatientID=patient)) == {granted}
        assert granted in _uids(_search(platform, city, limit=1000))
        assert other not in _uids(_search(platform, city, limit=1000))
        series = _search(platform, city, f"/studies/{granted}/series")
        assert len(series) == 1
        instances = _search(platform, city, f"/studies/{granted}/instances")
        assert len(instances) == 1
        assert _search(platform, city, "/series", PatientID=patient) and \
            _uids(_search(platform, city, "/instances", PatientID=patient)) == {granted}
        r = httpx.get(f"{platform.gateway_url}/dicom-web/studies/{other}/series", timeout=30,
                      headers={**auth(city), "Accept": "application/dicom+json"})
        assert r.status_code == 404
        # a grant to a user serves that user, not their colleagues (another specialist of 市医院 if any) nor
        # another facility's doctor
        assert _search(platform, login("doctor_b"), PatientID=patient) == []
    finally:
        _withdraw(platform, grant)
    assert _search(platform, city, PatientID=patient) == []


def test_a_grant_to_a_facility_serves_its_clinical_users(platform, login, studies) -> None:
    patient, granted, _ = studies
    city = login("specialist_city")
    facility = jwt.decode(city, options={"verify_signature": False})["fac"]
    grant = _grant(platform, study_uid=granted, grantee_facility_id=facility, reason="share")
    try:
        assert _uids(_search(platform, city, PatientID=patient)) == {granted}
        # the owner still sees both
        assert _uids(_search(platform, login("tech_a"), PatientID=patient)) == set(studies[1:])
    finally:
        _withdraw(platform, grant)
    assert _search(platform, city, PatientID=patient) == []
