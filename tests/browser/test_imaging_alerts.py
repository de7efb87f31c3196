"""An imaging critical finding (影像危急值) in the browser: doctor_a (城关镇, the requesting facility) is signed in
when the county specialist flags a critical finding in 城关镇's CT (through the API); the red banner appears
over doctor_a's page without a reload (WebSocket), for their facility, with the reader's note; the viewer shows
it too; doctor_a acknowledges it with a note and it goes away. The specialist meanwhile sees it in the
reading centre's calmer banner, without an acknowledge button.

Screenshots go to /tmp/th-browser/ (TH_SCREENSHOT_DIR).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import screenshot, shot, sign_in
from tests.conftest import Platform, auth
from tests.imaging.imaging_support import make_instance, stow, uid

pytestmark = pytest.mark.browser

NOTE = "左侧大量气胸，纵隔右移，请立即处理"


def _flag_critical(base: str, token: str, study: str) -> dict[str, Any]:
    url = f"{base}/api/imaging/studies/{study}"
    claim = httpx.post(f"{url}/claim", headers=auth(token), timeout=30)
    assert claim.status_code == 200, claim.text
    r = httpx.put(f"{url}/report", headers=auth(token), timeout=30, json={
        "version": claim.json()["version"], "findings": "左侧胸腔见大量气体影，左肺压缩约 80%。",
        "impression": "左侧大量气胸。", "critical": True, "critical_note": NOTE})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_critical_finding_alerts_doctor_a(  # type: ignore[no-untyped-def]
    new_page: Page, chromium, platform: Platform, login
) -> None:
    base = platform.gateway_url
    study = uid()
    r = stow(base, login("doctor_a"), [make_instance(study=study, description="胸部 DR")])
    assert r.status_code == 200, r.text

    page = new_page
    sign_in(page, base, "doctor_a")
    page.get_by_test_id("nav-item-imaging").click()
    page.get_by_test_id("area-page-imaging").wait_for()
    banner_rows = "[data-testid='imaging-critical-banner'] [data-testid='imaging-critical-alert']"
    mine = page.locator(f"{banner_rows}[data-study='{study}']")
    expect(mine).to_have_count(0)

    assert isinstance(chromium, Browser)
    reader_context = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN",
                                          timezone_id="Asia/Shanghai")
    reader_context.set_default_timeout(15_000)
    try:
        reader = reader_context.new_page()
        sign_in(reader, base, "specialist")

        _flag_critical(base, login("specialist"), study)

        # doctor_a: the red banner, for their facility, with the note, within seconds (well inside the 60 s
        # safety poll; the socket brings it)
        expect(mine).to_have_count(1, timeout=8_000)
        expect(mine).to_have_attribute("data-for-you", "true")
        expect(mine.get_by_test_id("imaging-critical-message")).to_contain_text(NOTE)
        expect(mine).to_contain_text("本机构")
        banner = page.get_by_test_id("imaging-critical-banner")
        expect(banner).to_have_attribute("data-for-you", "true")
        shot(banner, "imaging-alert-banner-doctor_a")

        # the specialist (reading centre): the same finding, awaiting the requester, no acknowledge button
        theirs = reader.locator(f"[data-testid='imaging-critical-alert'][data-study='{study}']")
        expect(theirs).to_have_count(1, timeout=8_000)
        expect(theirs).to_have_attribute("data-for-you", "false")
        expect(theirs).to_contain_text("等待送检机构确认")
        expect(theirs.get_by_test_id("imaging-critical-ack")).to_have_count(0)
        screenshot(reader, "imaging-alert-specialist")

        # doctor_a opens the study: the viewer shows the finding; acknowledge there with a note
        mine.get_by_test_id("imaging-critical-open").click()
        page.get_by_test_id("imaging-viewer-page").wait_for()
        study_alert = page.get_by_test_id("imaging-study-alert")
        expect(study_alert).to_contain_text(NOTE)
        expect(mine).to_have_count(0)  # shown once: on its study, not again in the banner
        screenshot(page, "imaging-alert-viewer-doctor_a")
        study_alert.get_by_test_id("imaging-critical-ack").click()
        study_alert.get_by_test_id("imaging-critical-ack-note").fill("已电话通知患者立即到县医院急诊")
        study_alert.get_by_test_id("imaging-critical-ack-confirm").click()
        expect(page.get_by_test_id("imaging-study-alert")).to_have_count(0)
        expect(mine).to_have_count(0)
        # the reading centre hears the acknowledgement too
        expect(theirs).to_have_count(0, timeout=8_000)

        acked = httpx.get(f"{base}/api/imaging/alerts", headers=auth(login("doctor_a")), timeout=30,
                          params={"include_acknowledged": "true"}).json()["items"]
        alert = next(a for a in acked if a["study_instance_uid"] == study)
        assert alert["status"] == "acknowledged"
        assert alert["acknowledge_note"] == "已电话通知患者立即到县医院急诊"
        assert alert["acknowledged_name"]
        # and after a reload it stays gone
        page.reload()
        page.get_by_test_id("imaging-viewer-page").wait_for()
        page.wait_for_timeout(1000)
        expect(page.get_by_test_id("imaging-study-alert")).to_have_count(0)
    finally:
        reader_context.close()
