"""The uploader sets the reading priority at upload: STOW-RS ``?priority=stat|urgent|routine``; the worklist
shows it. An unknown priority is 400 before anything is stored."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import auth
from tests.imaging.imaging_support import make_instance, multipart, uid


def _stow(platform: Any, token: str, parts: list[bytes], query: str) -> httpx.Response:
    body, ctype = multipart(parts)
    return httpx.post(f"{platform.gateway_url}/dicom-web/studies{query}", content=body, timeout=60,
                      headers={**auth(token), "Content-Type": ctype, "Accept": "application/dicom+json"})


def _item(platform: Any, token: str, study: str) -> dict[str, Any] | None:
    items = httpx.get(f"{platform.gateway_url}/api/imaging/worklist", params={"limit": 200},
                      headers=auth(token), timeout=30).json()["items"]
    return next((i for i in items if i["study_instance_uid"] == study), None)


def test_priority_set_at_upload_shows_on_the_worklist(platform, login) -> None:
    doctor, spec = login("doctor_a"), login("specialist")
    stat, urgent, plain = uid(), uid(), uid()
    # two studies in one upload, both STAT
    r = _stow(platform, doctor, [make_instance(study=stat), make_instance(study=urgent)], "?priority=stat")
    assert r.status_code == 200, r.text
    assert _item(platform, spec, stat)["priority"] == "stat"  # type: ignore[index]
    assert _item(platform, spec, urgent)["priority"] == "stat"  # type: ignore[index]
    # a later upload into the study may change it (URGENT, upper case accepted)
    r = _stow(platform, doctor, [make_instance(study=urgent)], "?priority=URGENT")
    assert r.status_code == 200, r.text
    assert _item(platform, spec, urgent)["priority"] == "urgent"  # type: ignore[index]
    r = _stow(platform, doctor, [make_instance(study=plain)], "")
    assert r.status_code == 200 and _item(platform, spec, plain)["priority"] == "routine"  # type: ignore[index]


def test_unknown_priority_is_refused_before_storing(platform, login) -> None:
    doctor, study = login("doctor_a"), uid()
    r = _stow(platform, doctor, [make_instance(study=study)], "?priority=soon")
    assert r.status_code == 400 and "priority" in r.json()["detail"]
    found = httpx.get(f"{platform.gateway_url}/dicom-web/studies", params={"StudyInstanceUID": study},
                      headers=auth(doctor), timeout=30)
    assert found.status_code == 200 and found.json() == []
