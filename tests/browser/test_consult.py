"""Remote consultation in a real browser, through the real gateway and consult service (docs/consult.md).

1. The township doctor (doctor_a) fills the request form with an ECG and a study of theirs attached: submit
   stays disabled, saying why, until the patient's e-consent is recorded; then submits. The specialist of
   the county hospital finds it in the inbox (deadline counting down), accepts, publishes free times and
   books one (scheduled). The specialist writes the opinion, signs it behind a confirmation; the doctor
   reads it, acknowledges it and closes the consult. Chat messages typed on one side appear on the other
   over the WebSocket.
2. The video room in two browser contexts (fake camera and microphone, loopback WebRTC): the pre-call check
   passes (camera, microphone, API round trip, loopback peer connection); the specialist (host) enters, the
   doctor waits until admitted from the lobby; each page plays the other's video (videoWidth > 0); a chat
   message crosses; a dropped connection shows "重新连接中" and comes back by itself.

Screenshots go to /tmp/th-browser/ (TH_SCREENSHOT_DIR).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import screenshot, shot, sign_in
from tests.conftest import Platform, auth
from tests.consult.consult_support import API, COUNTY, ecg_recording, imaging_study

pytestmark = pytest.mark.browser
VIDEO_TIMEOUT_MS = 45_000


def context_page(browser: Browser) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    return context, context.new_page()


@pytest.fixture
def two_pages(media_chromium: Browser, web_dist: object) -> Iterator[tuple[Page, Page]]:
    """The township doctor's and the specialist's pages, each in its own context (own session storage)."""
    a, doctor = context_page(media_chromium)
    b, specialist = context_page(media_chromium)
    try:
        yield doctor, specialist
    finally:
        a.close()
        b.close()


def create_request(page: Page, base: str, patient: str, recording_id: str, study_uid: str) -> str:
    """The doctor's request through the form; the consult's id."""
    sign_in(page, base, "doctor_a")
    page.get_by_test_id("nav-item-consults").click()
    page.get_by_test_id("area-page-consults").wait_for()
    page.get_by_test_id("consult-new").click()
    page.get_by_test_id("consult-request-page").wait_for()

    page.get_by_test_id("consult-patient-name").fill(patient)
    page.get_by_test_id("consult-patient-sex").select_option("male")
    page.get_by_test_id("consult-patient-age").fill("63")
    page.get_by_test_id("consult-reason").fill("胸痛 3 小时，心电图 ST 段改变")
    page.get_by_test_id("consult-question").fill("是否为急性冠脉综合征？是否需要转上级医院行冠脉介入？")
    page.get_by_test_id("consult-summary").fill("男，63 岁。胸骨后压榨样疼痛 3 小时，伴出汗。既往高血压 10 年。")
    page.get_by_test_id("consult-urgency-urgent").click()
    page.get_by_test_id("consult-target").select_option(COUNTY)
    page.get_by_test_id("consult-specialty").select_option("心内科")

    page.locator(f'[data-testid="consult-attach-ecg"][data-ref="{recording_id}"]').check()
    page.locator(f'[data-testid="consult-attach-study"][data-ref="{study_uid}"]').check()
    expect(page.get_by_test_id("consult-attachment-count")).to_contain_text("2")

    # everything but the consent is there: submit is disabled and says why
    submit = page.get_by_test_id("consult-submit")
    expect(submit).to_be_disabled()
    expect(page.get_by_test_id("consult-submit-reason")).to_contain_text("知情同意")

    page.get_by_test_id("consent-method-e").click()
    expect(page.get_by_test_id("consent-statement")).to_be_visible()
    page.get_by_test_id("consent-signer").fill(patient)
    page.get_by_test_id("consent-relation").select_option("本人")
    expect(page.get_by_test_id("consent-record")).to_be_disabled()  # not yet agreed
    page.get_by_test_id("consent-agree").check()
    page.get_by_test_id("consent-record").click()
    expect(page.get_by_test_id("consult-consent-recorded")).to_contain_text(patient)
    expect(submit).to_be_enabled()
    screenshot(page, "consult-request-form")

    submit.click()
    detail = page.get_by_test_id("consult-detail")
    expect(detail).to_have_attribute("data-status", "submitted")
    expect(page.get_by_test_id("consult-attachment")).to_have_count(2)
    expect(page.get_by_test_id("consult-consent-view")).to_have_attribute("data-recorded", "true")
    consult_id = detail.get_attribute("data-id")
    assert consult_id
    return consult_id


def accept_and_schedule(page: Page, base: str, consult_id: str, patient: str) -> None:
    sign_in(page, base, "specialist")
    page.get_by_test_id("nav-item-consults").click()
    inbox = page.get_by_test_id("consult-list")
    expect(inbox).to_have_attribute("data-box", "incoming")
    row = page.locator(f'[data-testid="consult-row"][data-id="{consult_id}"]')
    expect(row).to_contain_text(patient)
    expect(row.get_by_test_id("consult-status")).to_have_attribute("data-status", "submitted")
    expect(row.get_by_test_id("consult-deadline")).to_contain_text(re.compile("剩余"))
    shot(page.get_by_test_id("consult-list"), "consult-inbox")
    row.click()

    detail = page.get_by_test_id("consult-detail")
    expect(detail).to_have_attribute("data-status", "submitted")
    page.get_by_test_id("consult-action-accept").click()
    expect(detail).to_have_attribute("data-status", "accepted")
    expect(page.get_by_test_id("consult-consultant")).to_contain_text("孙主任")

    # publish two hours of free time from the next hour on, then book the first slot
    page.get_by_test_id("consult-publish").locator("summary").click()
    page.get_by_test_id("consult-publish-submit").click()
    first = page.get_by_test_id("consult-slot").first
    first.wait_for()
    first.click()
    expect(detail).to_have_attribute("data-status", "scheduled")
    expect(page.get_by_test_id("consult-booked")).to_be_visible()
    screenshot(page, "consult-detail-specialist")


def test_request_accept_opinion_and_chat(two_pages: tuple[Page, Page], platform: Platform, login) -> None:  # type: ignore[no-untyped-def]
    doctor, specialist = two_pages
    base = platform.gateway_url
    token = login("doctor_a")
    recording_id = ecg_recording(base, token)
    study_uid = imaging_study(base, token)
    patient = f"王建国{secrets.token_hex(2)}"

    consult_id = create_request(doctor, base, patient, recording_id, study_uid)
    screenshot(doctor, "consult-detail-submitted")
    accept_and_schedule(specialist, base, consult_id, patient)

    # the doctor's list shows it scheduled; the detail offers the calendar
    doctor.get_by_test_id("nav-item-consults").click()
    row = doctor.locator(f'[data-testid="consult-row"][data-id="{consult_id}"]')
    expect(row.get_by_test_id("consult-status")).to_have_attribute("data-status", "scheduled")
    shot(doctor.get_by_test_id("area-page-consults"), "consult-list-doctor")
    row.click()
    expect(doctor.get_by_test_id("consult-ics")).to_be_visible()

    # chat both ways, live
    expect(doctor.get_by_test_id("chat-mode")).to_have_text("实时")
    expect(specialist.get_by_test_id("chat-mode")).to_have_text("实时")
    doctor.get_by_test_id("chat-input").fill("患者目前血压 150/90，已嚼服阿司匹林 300 mg。")
    doctor.get_by_test_id("chat-send").click()
    expect(specialist.get_by_test_id("chat-message").filter(has_text="阿司匹林")).to_have_count(1)
    specialist.get_by_test_id("chat-input").fill("收到，请复查心电图并抽血查肌钙蛋白。")
    specialist.get_by_test_id("chat-input").press("Enter")
    expect(doctor.get_by_test_id("chat-message").filter(has_text="肌钙蛋白")).to_have_count(1)

    # the consultant opens the attached ECG in the ECG viewer (access granted on acceptance)
    specialist.get_by_test_id("consult-open-ecg").click()
    expect(specialist.get_by_test_id("ecg-viewer-canvas")).to_have_attribute("data-ready", "true", timeout=30_000)
    specialist.go_back()

    # the opinion: draft, sign behind a confirmation
    editor = specialist.get_by_test_id("consult-opinion-editor")
    editor.get_by_test_id("opinion-findings").fill("心电图示 V1–V4 导联 ST 段抬高 0.2 mV。")
    editor.get_by_test_id("opinion-diagnosis").fill("急性前壁 ST 段抬高型心肌梗死")
    editor.get_by_test_id("opinion-recommendations").fill("立即转县医院胸痛中心行急诊 PCI；转运途中心电监护。")
    editor.get_by_test_id("opinion-follow_up").fill("出院后 1 个月心内科门诊复诊。")
    editor.get_by_test_id("opinion-referral").check()
    editor.get_by_test_id("opinion-save").click()
    expect(editor.get_by_test_id("opinion-save-state")).to_contain_text("已保存")
    expect(specialist.get_by_test_id("consult-detail")).to_have_attribute("data-status", "opinion_written")
    editor.get_by_test_id("opinion-sign").click()
    dialog = specialist.get_by_test_id("opinion-sign-dialog")
    shot(dialog, "consult-opinion-sign-dialog")
    dialog.get_by_test_id("opinion-sign-confirm").click()
    expect(specialist.get_by_test_id("consult-detail")).to_have_attribute("data-status", "signed")
    expect(specialist.get_by_test_id("consult-opinion")).to_have_attribute("data-status", "signed")
    expect(specialist.get_by_test_id("opinion-signer")).to_contain_text("孙主任")

    # the doctor reads it, acknowledges, closes
    doctor.reload()
    opinion = doctor.get_by_test_id("consult-opinion")
    expect(opinion).to_have_attribute("data-status", "signed")
    expect(opinion.get_by_test_id("opinion-view-diagnosis")).to_have_text("急性前壁 ST 段抬高型心肌梗死")
    expect(doctor.get_by_test_id("consult-action-close")).to_be_disabled()  # not acknowledged yet
    opinion.get_by_test_id("opinion-acknowledge").click()
    expect(opinion.get_by_test_id("opinion-acknowledged")).to_be_visible()
    screenshot(doctor, "consult-detail-opinion-doctor")
    doctor.get_by_test_id("consult-action-close").click()
    doctor.get_by_test_id("consult-close-confirm").click()
    expect(doctor.get_by_test_id("consult-detail")).to_have_attribute("data-status", "closed")
    history = doctor.get_by_test_id("consult-history-item")
    actions = [history.nth(i).get_attribute("data-action") for i in range(history.count())]
    for action in ("submit", "accept", "schedule", "sign", "close"):
        assert action in actions, actions


def rooms_wired(base: str, token: str) -> bool:
    return httpx.get(f"{base}{API}/ice-servers", headers=auth(token), timeout=10).status_code != 404


def enter_room(page: Page, consult_id: str, base: str) -> None:
    page.goto(f"{base}/consults/{consult_id}/room")
    precall = page.get_by_test_id("consult-precall")
    expect(precall).to_have_attribute("data-done", "true", timeout=30_000)
    for check in ("camera", "microphone", "api", "loopback"):
        expect(page.get_by_test_id(f"precall-{check}")).to_have_attribute("data-state", "pass")
    page.get_by_test_id("precall-enter").click()


PLAYING = """() => [...document.querySelectorAll('[data-testid="remote-video"]')]
    .some(v => v.videoWidth > 0 && !v.paused)"""


def wait_remote_video(page: Page) -> None:
    page.wait_for_function(PLAYING, timeout=VIDEO_TIMEOUT_MS)


def test_precall_check(two_pages: tuple[Page, Page], platform: Platform, login) -> None:  # type: ignore[no-untyped-def]
    """The pre-call page on its own: the fake camera previews, the microphone meter moves, the loopback peer
    connection opens; the API round trip passes once the rooms' ice-servers endpoint answers."""
    _, specialist = two_pages
    base = platform.gateway_url
    from tests.consult.consult_support import post, submitted

    consult = submitted(base, login("doctor_a"), patient_name=f"钱玉梅{secrets.token_hex(2)}")
    assert post(base, login("specialist"), f"/consults/{consult['id']}/accept").status_code == 200
    sign_in(specialist, base, "specialist")
    specialist.goto(f"{base}/consults/{consult['id']}/room")
    precall = specialist.get_by_test_id("consult-precall")
    expect(precall).to_have_attribute("data-done", "true", timeout=30_000)
    for check in ("camera", "microphone", "loopback"):
        expect(specialist.get_by_test_id(f"precall-{check}")).to_have_attribute("data-state", "pass")
    expected = "pass" if rooms_wired(base, login("specialist")) else "fail"
    expect(specialist.get_by_test_id("precall-api")).to_have_attribute("data-state", expected)
    specialist.wait_for_function(
        """() => document.querySelector('[data-testid="precall-video"]').videoWidth > 0""", timeout=15_000)
    specialist.wait_for_function(
        """() => Number(document.querySelector('[data-testid="precall-mic-level"]').dataset.level || 0) > 0""",
        timeout=15_000)
    shot(precall, "consult-precall")


def test_video_room(two_pages: tuple[Page, Page], platform: Platform, login) -> None:  # type: ignore[no-untyped-def]
    doctor, specialist = two_pages
    base = platform.gateway_url
    token = login("doctor_a")
    if not rooms_wired(base, token):
        pytest.fail("the consult rooms' HTTP endpoints (ice-servers, signaling socket) are not wired into the app")
    from tests.consult.consult_support import post, submitted

    consult = submitted(base, token, patient_name=f"赵秀兰{secrets.token_hex(2)}")
    r = post(base, login("specialist"), f"/consults/{consult['id']}/accept")
    assert r.status_code == 200, r.text

    sign_in(specialist, base, "specialist")
    sign_in(doctor, base, "doctor_a")
    enter_room(specialist, consult["id"], base)
    shot(specialist.get_by_test_id("consult-room-page"), "consult-room-host-alone")
    room = specialist.get_by_test_id("room")
    expect(room).to_have_attribute("data-host", "true")

    enter_room(doctor, consult["id"], base)
    expect(doctor.get_by_test_id("room-waiting")).to_have_attribute("data-phase", "waiting")
    shot(doctor.get_by_test_id("room-waiting"), "consult-room-waiting")
    entry = specialist.get_by_test_id("lobby-entry").filter(has_text="张医生")
    expect(entry).to_be_visible()
    entry.get_by_test_id("lobby-admit").click()
    expect(doctor.get_by_test_id("room")).to_have_attribute("data-phase", "in_room")

    wait_remote_video(specialist)
    wait_remote_video(doctor)
    screenshot(specialist, "consult-room-specialist")
    screenshot(doctor, "consult-room-doctor")

    doctor.get_by_test_id("chat-input").fill("能看到我这边的画面吗？")
    doctor.get_by_test_id("chat-send").click()
    expect(specialist.get_by_test_id("chat-message").filter(has_text="画面")).to_have_count(1)

    # recording: only once everyone consented; a red REC on both screens while it runs
    start = specialist.get_by_test_id("room-record-start")
    expect(start).to_be_disabled()
    specialist.get_by_test_id("room-record-consent").check()
    expect(start).to_be_disabled()  # the doctor has not consented yet
    doctor.get_by_test_id("room-record-consent").check()
    expect(start).to_be_enabled()
    start.click()
    expect(specialist.get_by_test_id("room-rec")).to_be_visible()
    expect(doctor.get_by_test_id("room-rec")).to_be_visible()
    shot(specialist.get_by_test_id("room"), "consult-room-recording")
    specialist.wait_for_timeout(2_000)  # a couple of seconds of media in the files
    specialist.get_by_test_id("room-record-stop").click()
    expect(doctor.get_by_test_id("room-rec")).to_be_hidden()

    # the consultant opens the attached material beside the call (none here: the panel says so)
    specialist.get_by_test_id("room-tab-materials").click()
    expect(specialist.get_by_test_id("room-materials")).to_be_visible()

    # a network drop: the doctor's page shows the reconnecting state, then plays the video again
    doctor.evaluate("() => window.dispatchEvent(new CustomEvent('consult-room-drop'))")
    expect(doctor.get_by_test_id("room-reconnecting")).to_be_visible()
    expect(doctor.get_by_test_id("room")).to_have_attribute("data-phase", "in_room", timeout=30_000)
    wait_remote_video(doctor)
    wait_remote_video(specialist)

    doctor.get_by_test_id("room-leave").click()
    specialist.get_by_test_id("room-end").click()
    expect(specialist.get_by_test_id("consult-precall")).to_be_visible()
