"""Consent: a signed form stored and downloadable, e-consent, withdrawal before acceptance only."""

from __future__ import annotations

import httpx

from tests.conftest import auth
from tests.consult.consult_support import API, draft, econsent, get, post

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" + bytes(range(256))


def _upload(base: str, token: str, cid: str, data: bytes, ctype: str) -> httpx.Response:
    return httpx.post(f"{base}{API}/consults/{cid}/consent", headers=auth(token), timeout=30,
                      files={"file": ("consent.pdf", data, ctype)},
                      data={"signer_name": "测试患者", "relation": "本人", "statement_version": "2026-01"})


def test_signed_form_is_stored_and_downloadable(platform, login) -> None:
    base = platform.gateway_url
    doctor = login("doctor_a")
    c = draft(base, doctor)
    assert _upload(base, doctor, c["id"], b"not a pdf", "application/pdf").status_code == 415
    r = _upload(base, doctor, c["id"], PDF, "application/pdf")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["method"] == "signed_form" and body["has_file"] and body["size_bytes"] == len(PDF)
    assert len(body["statement_hash"]) == 64
    f = get(base, doctor, f"/consults/{c['id']}/consent/file")
    assert f.status_code == 200 and f.content == PDF and f.headers["content-type"] == "application/pdf"
    # the target side reads it too once submitted; an outsider does not
    assert post(base, doctor, f"/consults/{c['id']}/submit").status_code == 200
    assert get(base, login("specialist"), f"/consults/{c['id']}/consent/file").status_code == 200
    assert get(base, login("doctor_b"), f"/consults/{c['id']}/consent/file").status_code == 404


def test_withdrawal_before_acceptance_only(platform, login) -> None:
    base = platform.gateway_url
    doctor, specialist = login("doctor_a"), login("specialist")
    c = draft(base, doctor)
    bad = httpx.post(f"{base}{API}/consults/{c['id']}/consent", headers=auth(doctor),
                     json={"method": "e_consent", "signer_name": "x", "relation": "邻居",
                           "statement_version": "2026-01"})
    assert bad.status_code == 422
    assert econsent(base, doctor, c["id"]).status_code == 201
    assert get(base, doctor, f"/consults/{c['id']}").json()["consent"]["recorded"] is True
    assert httpx.delete(f"{base}{API}/consults/{c['id']}/consent", headers=auth(doctor)).status_code == 204
    assert get(base, doctor, f"/consults/{c['id']}").json()["consent"]["recorded"] is False
    r = post(base, doctor, f"/consults/{c['id']}/submit")
    assert r.status_code == 409 and r.json()["error"] == "consent_required"
    assert econsent(base, doctor, c["id"]).status_code == 201
    assert post(base, doctor, f"/consults/{c['id']}/submit").status_code == 200
    assert post(base, specialist, f"/consults/{c['id']}/accept").status_code == 200
    late = httpx.delete(f"{base}{API}/consults/{c['id']}/consent", headers=auth(doctor))
    assert late.status_code == 409
