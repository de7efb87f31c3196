"""Who sees a consult and its attached items: outsiders get 404; the consultant reads exactly the attached study
and ECG recording after accept (through the gateway) and no longer after close."""

from __future__ import annotations

import httpx

from tests.conftest import auth
from tests.consult.consult_support import (
    CITY,
    COUNTY,
    draft,
    ecg_recording,
    econsent,
    get,
    imaging_study,
    post,
    submitted,
    transitions,
)


def _study_status(base: str, token: str, study: str) -> int:
    return httpx.get(f"{base}/dicom-web/studies/{study}/metadata", headers=auth(token), timeout=30).status_code


def _ecg_status(base: str, token: str, rid: str, path: str = "") -> int:
    return httpx.get(f"{base}/api/ecg/recordings/{rid}{path}", headers=auth(token), timeout=30).status_code


def test_outsiders_get_404(platform, login) -> None:
    base = platform.gateway_url
    doctor = login("doctor_a")
    c = submitted(base, doctor, target=COUNTY)
    for outsider in ("specialist_city", "doctor_b", "analyst"):
        r = get(base, login(outsider), f"/consults/{c['id']}")
        assert r.status_code == 404, outsider
        assert post(base, login(outsider), f"/consults/{c['id']}/accept").status_code == 404
    assert c["id"] not in [i["id"] for i in get(base, login("specialist_city"), "/consults",
                                                 box="incoming").json()["items"]]
    assert get(base, login("specialist"), f"/consults/{c['id']}").status_code == 200


def test_attaching_an_item_the_requester_cannot_see_is_404(platform, login) -> None:
    base = platform.gateway_url
    doctor_a, doctor_b = login("doctor_a"), login("doctor_b")
    theirs = imaging_study(base, doctor_b)
    c = draft(base, doctor_a)
    r = post(base, doctor_a, f"/consults/{c['id']}/attachments", {"kind": "imaging_study", "ref": theirs})
    assert r.status_code == 404
    r = post(base, doctor_a, f"/consults/{c['id']}/attachments",
             {"kind": "ecg_recording", "ref": ecg_recording(base, doctor_b)})
    assert r.status_code == 404
    r = post(base, doctor_a, f"/consults/{c['id']}/attachments", {"kind": "pathology_case", "ref": "P-1"})
    assert r.status_code == 404


def test_consultant_reads_attached_items_only_while_the_consult_is_open(platform, stack, login) -> None:
    base = platform.gateway_url
    doctor, consultant = login("doctor_a"), login("specialist_city")
    study, other_study = imaging_study(base, doctor), imaging_study(base, doctor)
    rid, other_rid = ecg_recording(base, doctor), ecg_recording(base, doctor)
    c = draft(base, doctor, target=CITY)
    for kind, ref in (("imaging_study", study), ("ecg_recording", rid)):
        r = post(base, doctor, f"/consults/{c['id']}/attachments", {"kind": kind, "ref": ref, "label": kind})
        assert r.status_code == 201, r.text
    assert econsent(base, doctor, c["id"]).status_code == 201
    assert post(base, doctor, f"/consults/{c['id']}/submit").status_code == 200

    # submitted: the target side sees the consult, not yet the items
    assert get(base, consultant, f"/consults/{c['id']}").status_code == 200
    assert _study_status(base, consultant, study) == 404
    assert _ecg_status(base, consultant, rid) == 404

    assert post(base, consultant, f"/consults/{c['id']}/accept").status_code == 200
    grants = get(base, doctor, f"/consults/{c['id']}").json()["grants"]
    assert sorted(g["status"] for g in grants) == ["active", "active"], grants
    assert all(g["expires_at"] for g in grants)
    assert _study_status(base, consultant, study) == 200
    assert _ecg_status(base, consultant, rid) == 200
    assert _ecg_status(base, consultant, rid, "/signal?duration=1") == 200
    # exactly the attached items
    assert _study_status(base, consultant, other_study) == 404
    assert _ecg_status(base, consultant, other_rid) == 404
    # another specialist of the same hospital is not the consultant
    assert _ecg_status(base, login("specialist"), rid) == 200  # 县医院 reads 城关镇 by standing policy anyway

    transitions(stack.database_url, c["id"], [(consultant, "write_opinion"), (consultant, "sign")])
    closed = post(base, consultant, f"/consults/{c['id']}/close")
    assert closed.status_code == 200, closed.text
    grants = get(base, doctor, f"/consults/{c['id']}").json()["grants"]
    assert sorted(g["status"] for g in grants) == ["revoked", "revoked"], grants
    assert _study_status(base, consultant, study) == 404
    assert _ecg_status(base, consultant, rid) == 404
    # the consult itself stays readable by both sides
    assert get(base, consultant, f"/consults/{c['id']}").status_code == 200
