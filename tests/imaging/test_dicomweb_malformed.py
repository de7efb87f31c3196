"""STOW-RS with bad input: non-DICOM parts, truncated files, missing UIDs, a body that stops mid-part, wrong
media types, a study mismatch. Each failure names its reason (Failure Reason + ErrorComment), the good
parts of the same request are stored (202), and a failed instance leaves no row and no object behind."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import jwt
import pytest

from common.config import platform_settings
from common.storage import open_store
from tests.conftest import auth
from tests.imaging.imaging_support import make_instance, multipart, quiet_pydicom, read, sequence, stow, uid, value

quiet_pydicom()


def _facility(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["fac"])


def _without(data: bytes, keyword: str) -> bytes:
    ds = read(data)
    delattr(ds, keyword)
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


async def _leftovers(admin_db, facility: str, studies: list[str]) -> tuple[int, list[str]]:
    async with admin_db.transaction() as conn:
        rows = await conn.fetchval("SELECT count(*) FROM imaging.studies WHERE study_instance_uid = ANY($1)", studies)
    store = open_store(platform_settings())
    keys = [o.key for s in studies async for o in store.list(f"imaging/{facility}/{s}/")]
    return int(rows), keys


async def test_mixed_request_stores_the_good_and_names_each_failure(platform, login, admin_db) -> None:
    token = login("tech_a")
    good = make_instance()
    bad = {"garbage": make_instance(), "truncated": make_instance(), "no_uid": make_instance()}
    parts = [good, b"GIF89a definitely not DICOM" * 20, bad["truncated"][:-100],
             _without(bad["no_uid"], "SeriesInstanceUID"), ("text/plain", b"hello")]
    r = stow(platform.gateway_url, token, parts)
    assert r.status_code == 202, r.text
    body = r.json()
    assert [value(i, "00081155") for i in sequence(body, "00081199")] == [read(good).SOPInstanceUID]
    failures = {value(i, "00000902").split(":")[0]: (value(i, "00081197"), value(i, "00000902"))
                for i in sequence(body, "00081198")}
    assert failures["part 2"][0] == 0xC000 and "not a DICOM Part-10 file" in failures["part 2"][1]
    assert failures["part 3"][0] == 0xC000 and "truncated" in failures["part 3"][1]
    assert failures["part 4"][0] == 0xA900 and "Series Instance UID" in failures["part 4"][1]
    assert failures["part 5"][0] == 0xC000 and "text/plain" in failures["part 5"][1]
    failed_studies = [str(read(d).StudyInstanceUID) for d in bad.values()]
    assert await _leftovers(admin_db, _facility(token), failed_studies) == (0, [])


async def test_nothing_stored_is_409(platform, login, admin_db) -> None:
    token = login("tech_a")
    truncated = make_instance()
    r = stow(platform.service_url("imaging"), token, [truncated[:-10], b"\x00" * 500])
    assert r.status_code == 409
    body = r.json()
    assert "00081199" not in body and len(sequence(body, "00081198")) == 2
    assert await _leftovers(admin_db, _facility(token), [str(read(truncated).StudyInstanceUID)]) == (0, [])


async def test_body_that_stops_inside_a_part(platform, login, admin_db) -> None:
    token = login("tech_a")
    first, second = make_instance(), make_instance()
    body, ctype = multipart([first, second])
    cut = body[: body.index(second) + len(second) // 2]
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{platform.gateway_url}/dicom-web/studies", content=cut,
                            headers={**auth(token), "Content-Type": ctype})
    assert r.status_code == 202
    items = sequence(r.json(), "00081198")
    assert len(items) == 1 and "ended inside this part" in value(items[0], "00000902")
    assert await _leftovers(admin_db, _facility(token), [str(read(second).StudyInstanceUID)]) == (0, [])


def test_study_url_mismatch_and_request_level_errors(platform, login) -> None:
    token = login("tech_a")
    url = f"{platform.gateway_url}/dicom-web/studies"
    r = stow(platform.gateway_url, token, [make_instance()], study=uid())
    assert r.status_code == 409 and value(sequence(r.json(), "00081198")[0], "00081197") == 0xA900
    r = httpx.post(url, content=b"{}", headers={**auth(token), "Content-Type": "application/json"})
    assert r.status_code == 415
    r = httpx.post(url, content=b"x", headers={**auth(token),
                                               "Content-Type": 'multipart/related; type="application/dicom+json"; '
                                                               "boundary=x"})
    assert r.status_code == 415
    r = httpx.post(url, content=b"x", headers={**auth(token), "Content-Type": "multipart/related"})
    assert r.status_code == 400 and "boundary" in r.json()["detail"]
    r = httpx.post(url, content=b"no boundary in here", headers={**auth(token),
                                                                  "Content-Type": "multipart/related; boundary=zz"})
    assert r.status_code == 400
    r = httpx.post(url, content=b"--zz--\r\n",
                   headers={**auth(token), "Content-Type": "multipart/related; boundary=zz"})
    assert r.status_code == 400 and "no instances" in r.json()["detail"]
    body, ctype = multipart([make_instance()])
    assert httpx.post(url, content=body, headers={"Content-Type": ctype}).status_code == 401
    r = httpx.post(url, content=body, headers={**auth(login("analyst")), "Content-Type": ctype})
    assert r.status_code == 403


@pytest.mark.parametrize("base", ["gateway", "service"])
def test_a_large_instance_streams_in_small_chunks(platform, login, base) -> None:
    token = login("tech_a")
    big = make_instance(frames=40, rows=256, columns=512)  # ~10 MB
    body, ctype = multipart([big])
    root = platform.gateway_url if base == "gateway" else platform.service_url("imaging")

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    r = httpx.post(f"{root}/dicom-web/studies", content=chunks(), headers={**auth(token), "Content-Type": ctype},
                   timeout=120)
    assert r.status_code == 200, r.text
    ds = read(big)
    got = httpx.get(f"{root}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/"
                    f"{ds.SOPInstanceUID}", headers={**auth(token), "Accept":
                                                     'multipart/related; type="application/dicom"; transfer-syntax=*'},
                    timeout=120)
    assert got.status_code == 200 and big in got.content
    assert int(got.headers["content-length"]) == len(got.content)
