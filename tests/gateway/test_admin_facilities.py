"""The facility tree through /api/admin: scope of a facility admin, kinds, cycles, codes, reading centres.

Structural tests build under a fresh region of their own, so the demo region (and every token's
``serves``) stays as the other tests expect it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.identity.seed import CITY_HOSPITAL, COUNTY_HOSPITAL, REGION
from tests.conftest import Platform
from tests.gateway.identity_support import bearer, fid, unique


def _code(prefix: str = "T") -> str:
    return unique(prefix).upper().replace("_", "-")


def _walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from _walk(node["children"])


class Admin:
    def __init__(self, base: str, token: str):
        self.base, self.headers = base, bearer(token)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.base + path, headers=self.headers, **kw)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.base + path, headers=self.headers, json=body)

    def patch(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.patch(self.base + path, headers=self.headers, json=body)

    def create(self, **body: Any) -> dict[str, Any]:
        r = self.post("/api/admin/facilities", {"code": _code(), "name_zh": "测试机构", **body})
        assert r.status_code == 201, r.text
        return dict(r.json())


@pytest.fixture
def admin(platform: Platform, login: Callable[[str], str]) -> Admin:
    return Admin(platform.gateway_url, login("admin"))


@pytest.fixture
def hospital_admin(platform: Platform, login: Callable[[str], str]) -> Admin:
    return Admin(platform.gateway_url, login("hospital_admin"))


@pytest.fixture
def region(admin: Admin) -> dict[str, Any]:
    """A region of this test's own: a hospital and a township below it."""
    root = admin.create(kind="region", name_en="Test region")
    hospital = admin.create(kind="hospital", parent_id=root["id"], level="county")
    township = admin.create(kind="township", parent_id=hospital["id"], reading_centre_id=hospital["id"])
    return {"root": root, "hospital": hospital, "township": township}


def test_platform_admin_sees_the_whole_tree(admin: Admin) -> None:
    r = admin.get("/api/admin/facilities")
    assert r.status_code == 200
    qinghe = next(n for n in r.json() if n["id"] == fid(REGION))
    assert qinghe["parent_id"] is None and qinghe["kind"] == "region"
    assert {c["code"] for c in qinghe["children"]} >= {CITY_HOSPITAL, COUNTY_HOSPITAL}
    county = next(c for c in qinghe["children"] if c["code"] == COUNTY_HOSPITAL)
    assert {"QH-CG", "QH-LJ", "QH-WZ"} <= {c["code"] for c in county["children"]}


def test_facility_admin_sees_their_subtree_only(hospital_admin: Admin) -> None:
    tree = hospital_admin.get("/api/admin/facilities").json()
    assert [n["id"] for n in tree] == [fid(COUNTY_HOSPITAL)]
    codes = {n["code"] for n in _walk(tree)}
    assert {"QH-CG", "QH-CG-DC", "QH-LJ", "QH-WZ"} <= codes and CITY_HOSPITAL not in codes
    assert hospital_admin.get(f"/api/admin/facilities/{fid('QH-CG-DC')}").status_code == 200
    for foreign in (fid(CITY_HOSPITAL), fid(REGION)):
        r = hospital_admin.get(f"/api/admin/facilities/{foreign}")
        assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_facility_admin_creates_and_edits_below_their_hospital(hospital_admin: Admin) -> None:
    created = hospital_admin.create(kind="township", parent_id=fid(COUNTY_HOSPITAL), name_en="Test township")
    assert created["parent_id"] == fid(COUNTY_HOSPITAL) and created["active"] is True
    village = hospital_admin.create(kind="village", parent_id=created["id"])
    r = hospital_admin.patch(f"/api/admin/facilities/{village['id']}", {"name_zh": "改名卫生室", "level": None})
    assert r.status_code == 200 and r.json()["name_zh"] == "改名卫生室"
    off = hospital_admin.patch(f"/api/admin/facilities/{created['id']}", {"active": False})
    assert off.status_code == 200 and off.json()["active"] is False

    elsewhere = hospital_admin.post(
        "/api/admin/facilities", {"code": _code(), "name_zh": "x", "kind": "township", "parent_id": fid(CITY_HOSPITAL)}
    )
    assert elsewhere.status_code == 404
    root = hospital_admin.post("/api/admin/facilities", {"code": _code(), "name_zh": "x", "kind": "region"})
    assert root.status_code == 403
    move_own = hospital_admin.patch(f"/api/admin/facilities/{fid(COUNTY_HOSPITAL)}", {"parent_id": fid(CITY_HOSPITAL)})
    assert move_own.status_code in (403, 404)
    foreign = hospital_admin.patch(f"/api/admin/facilities/{fid(CITY_HOSPITAL)}", {"name_zh": "x"})
    assert foreign.status_code == 404


def test_cycles_are_refused(admin: Admin, region: dict[str, Any]) -> None:
    root, hospital, township = region["root"], region["hospital"], region["township"]
    under_child = admin.patch(f"/api/admin/facilities/{root['id']}", {"parent_id": township["id"]})
    assert under_child.status_code == 422
    under_self = admin.patch(f"/api/admin/facilities/{hospital['id']}", {"parent_id": hospital["id"]})
    assert under_self.status_code == 422
    # a region under a region is fine; under its own descendant region it is a cycle
    sub = admin.create(kind="region", parent_id=root["id"])
    cycle = admin.patch(f"/api/admin/facilities/{root['id']}", {"parent_id": sub["id"]})
    assert cycle.status_code == 422 and "cycle" in cycle.json()["detail"]
    moved = admin.patch(f"/api/admin/facilities/{hospital['id']}", {"parent_id": sub["id"]})
    assert moved.status_code == 200 and moved.json()["parent_id"] == sub["id"]


def test_kinds_nest(admin: Admin, region: dict[str, Any]) -> None:
    r = admin.post(
        "/api/admin/facilities", {"code": _code(), "name_zh": "x", "kind": "village", "parent_id": region["root"]["id"]}
    )
    assert r.status_code == 422 and r.json()["error"] == "invalid"
    hospital_under_township = admin.post(
        "/api/admin/facilities",
        {"code": _code(), "name_zh": "x", "kind": "hospital", "parent_id": region["township"]["id"]},
    )
    assert hospital_under_township.status_code == 422
    # a hospital with townships below cannot become a village
    rekind = admin.patch(f"/api/admin/facilities/{region['hospital']['id']}", {"kind": "village"})
    assert rekind.status_code == 422


def test_reading_centre_rules(admin: Admin, region: dict[str, Any]) -> None:
    township = region["township"]
    not_hospital = admin.patch(f"/api/admin/facilities/{township['id']}", {"reading_centre_id": region["root"]["id"]})
    assert not_hospital.status_code == 422
    itself = admin.patch(f"/api/admin/facilities/{township['id']}", {"reading_centre_id": township["id"]})
    assert itself.status_code == 422
    cleared = admin.patch(f"/api/admin/facilities/{township['id']}", {"reading_centre_id": None})
    assert cleared.status_code == 200 and cleared.json()["reading_centre_id"] is None
    # a hospital that reads for someone stays a hospital
    admin.patch(f"/api/admin/facilities/{township['id']}", {"reading_centre_id": region["hospital"]["id"]})
    empty_hospital = admin.create(kind="hospital", parent_id=region["root"]["id"])
    admin.patch(f"/api/admin/facilities/{township['id']}", {"reading_centre_id": empty_hospital["id"]})
    assert admin.patch(f"/api/admin/facilities/{empty_hospital['id']}", {"kind": "township"}).status_code == 422


def test_validation_and_duplicates(admin: Admin, region: dict[str, Any]) -> None:
    code = region["hospital"]["code"]
    dup = admin.post(
        "/api/admin/facilities",
        {"code": code.lower(), "name_zh": "x", "kind": "hospital", "parent_id": region["root"]["id"]},
    )
    assert dup.status_code == 409 and dup.json()["error"] == "conflict"
    rename = admin.patch(f"/api/admin/facilities/{region['township']['id']}", {"code": code})
    assert rename.status_code == 409
    for body, field in (
        ({"code": "!", "name_zh": "x", "kind": "region"}, "code"),
        ({"code": _code(), "name_zh": "  ", "kind": "region"}, "name_zh"),
        ({"code": _code(), "name_zh": "x", "kind": "planet"}, "kind"),
        ({"code": _code(), "name_zh": "x", "kind": "region", "colour": "red"}, "colour"),
    ):
        r = admin.post("/api/admin/facilities", body)
        assert r.status_code == 422 and field in r.json()["detail"], r.text
    nulled = admin.patch(f"/api/admin/facilities/{region['township']['id']}", {"name_zh": None})
    assert nulled.status_code == 422
    missing = admin.patch("/api/admin/facilities/00000000-0000-0000-0000-000000000001", {"name_zh": "x"})
    assert missing.status_code == 404


def test_clinical_roles_cannot_administer(platform: Platform, login: Callable[[str], str]) -> None:
    for username in ("doctor_a", "specialist", "analyst"):
        r = httpx.get(f"{platform.gateway_url}/api/admin/facilities", headers=bearer(login(username)))
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert httpx.get(f"{platform.gateway_url}/api/admin/facilities").status_code == 401
