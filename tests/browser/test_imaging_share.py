"""A share link in a real browser: the owner (doctor_a) creates it under the viewer, a fresh browser that never
signed in opens it and sees the study read-only (series thumbnails, the CT rendered, stack scrolling, window
presets, the expiry notice, the language switch, no patient ID); after the owner revokes it the page says
链接已失效.

Screenshots go to /tmp/th-browser/ (TH_SCREENSHOT_DIR).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import screenshot, shot, sign_in
from tests.browser.test_imaging import N_SLICES, canvas_digest, make_ct_series
from tests.conftest import Platform, auth
from tests.imaging.imaging_support import stow

pytestmark = pytest.mark.browser


def test_share_link_opens_without_sign_in_until_revoked(  # type: ignore[no-untyped-def]
    new_page: Page, chromium, platform: Platform, login, tmp_path: Path
) -> None:
    base = platform.gateway_url
    patient_id = f"SH{secrets.token_hex(4).upper()}"
    study, files, _ = make_ct_series(tmp_path, patient_id)
    r = stow(base, login("tech_a"), [p.read_bytes() for p in files])
    assert r.status_code == 200, r.text

    # the API hands out the web page's link (token in the fragment), besides the API path
    api_share = httpx.post(f"{base}/api/imaging/studies/{study}/shares", headers=auth(login("doctor_a")), timeout=30,
                           json={"expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()})
    assert api_share.status_code == 201, api_share.text
    assert api_share.json()["link"] == f"/imaging/shared#token={api_share.json()['token']}"

    # -- the owner creates a link under the viewer ---------------------------------------------------------
    owner = new_page
    sign_in(owner, base, "doctor_a")
    owner.goto(f"{base}/imaging/studies/{study}")
    panel = owner.get_by_test_id("imaging-share-panel")
    panel.scroll_into_view_if_needed()
    owner.get_by_test_id("imaging-share-days").select_option("7")
    owner.get_by_test_id("imaging-share-note").fill("转诊至市人民医院")
    owner.get_by_test_id("imaging-share-create").click()
    link = owner.get_by_test_id("imaging-share-link").input_value()
    assert re.fullmatch(re.escape(base) + r"/imaging/shared#token=[A-Za-z0-9_-]{40,}", link), link
    row = owner.locator("[data-testid='imaging-share-row'][data-status='active']", has_text="转诊至市人民医院")
    expect(row).to_have_count(1)
    shot(panel, "imaging-share-panel")

    # -- a browser that never signed in opens it ------------------------------------------------------------
    assert isinstance(chromium, Browser)
    guest_context = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN",
                                         timezone_id="Asia/Shanghai")
    guest_context.set_default_timeout(15_000)
    try:
        guest = guest_context.new_page()
        bearer: list[str] = []
        guest.on("request", lambda req: bearer.append(req.url) if req.headers.get("authorization") else None)
        guest.goto(link)
        page_root = guest.get_by_test_id("shared-viewer-page")
        expect(page_root).to_have_attribute("data-state", "ready")
        expect(guest).to_have_url(link)  # not sent to the login page
        expect(guest.get_by_test_id("shared-expiry")).to_contain_text(re.compile(r"链接将于 .+ 失效"))
        expect(guest.get_by_test_id("shared-patient")).to_have_text("王芳")
        expect(guest.get_by_test_id("shared-study-head")).to_contain_text("胸部 CT 平扫")
        expect(guest.get_by_test_id("imaging-series")).to_have_count(1)
        expect(guest.get_by_test_id("imaging-series-thumb")).to_have_attribute("data-loaded", "true", timeout=20_000)
        viewport = guest.get_by_test_id("imaging-viewport")
        expect(viewport).to_have_attribute("data-ready", "true", timeout=60_000)
        expect(viewport).to_have_attribute("data-count", str(N_SLICES))
        expect(viewport).to_have_attribute("data-mode", "cornerstone")  # the original files, decoded here
        guest.wait_for_timeout(300)
        first = canvas_digest(guest)  # asserts the canvas is not black
        assert patient_id not in guest.locator("body").inner_text()  # no more than the share needs
        screenshot(guest, "imaging-share-guest")

        # stack scrolling with the wheel and the keyboard; the image changes
        box = viewport.bounding_box()
        assert box is not None
        guest.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for _ in range(4):
            guest.mouse.wheel(0, 120)
            guest.wait_for_timeout(150)
        expect(viewport).not_to_have_attribute("data-index", "0")
        guest.keyboard.press("End")
        expect(viewport).to_have_attribute("data-index", str(N_SLICES - 1))
        guest.keyboard.press("Home")
        expect(viewport).to_have_attribute("data-index", "0")
        guest.keyboard.press("ArrowDown")
        guest.keyboard.press("ArrowDown")
        guest.keyboard.press("ArrowDown")
        guest.keyboard.press("ArrowDown")
        expect(viewport).to_have_attribute("data-index", "4")  # the nodule's largest slice
        guest.wait_for_timeout(300)
        assert canvas_digest(guest) != first, "paging did not change the image"

        # window/level presets
        before = canvas_digest(guest)
        guest.get_by_test_id("imaging-preset-lung").click()
        expect(viewport).to_have_attribute("data-wc", "-600")
        expect(viewport).to_have_attribute("data-ww", "1500")
        guest.wait_for_timeout(300)
        assert canvas_digest(guest) != before, "the lung window did not change the pixels"
        shot(guest.get_by_test_id("imaging-viewer"), "imaging-share-guest-lung")
        assert not bearer, f"requests with a bearer token from a guest: {bearer[:3]}"

        # English on request
        guest.get_by_test_id("lang-switch").click()
        expect(guest.get_by_test_id("shared-expiry")).to_contain_text("This link stops working on")
        guest.get_by_test_id("lang-switch").click()
        expect(guest.get_by_test_id("shared-expiry")).to_contain_text("链接将于")

        # -- the owner revokes it: the page says the link no longer works -------------------------------------
        row.get_by_test_id("imaging-share-revoke").click()
        expect(owner.locator("[data-testid='imaging-share-row'][data-status='revoked']",
                             has_text="转诊至市人民医院")).to_have_count(1)
        guest.reload()
        expect(page_root).to_have_attribute("data-state", "gone")
        expect(guest.get_by_test_id("shared-gone")).to_contain_text("链接已失效")
        expect(guest.get_by_test_id("imaging-viewport")).to_have_count(0)
        screenshot(guest, "imaging-share-gone")

        # an unknown token is not "expired": it says the link is invalid (the same browser, whose HTTP cache
        # holds the revoked link's answers for the same URLs)
        stranger = guest_context.new_page()
        stranger.goto(f"{base}/imaging/shared#token={'x' * 43}")
        expect(stranger.get_by_test_id("shared-viewer-page")).to_have_attribute("data-state", "invalid")
        expect(stranger.get_by_test_id("shared-invalid")).to_contain_text("链接无效")
    finally:
        guest_context.close()
