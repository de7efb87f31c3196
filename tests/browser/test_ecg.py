"""The ECG cloud in a real browser, through the real gateway, services and Celery worker.

1. The township doctor uploads a DICOM 12-lead, a WFDB record (.hea + .dat picked together) and a broken
   file at once: per-file progress, the two recordings analysed, the broken one listed with the service's
   reason. The tracing (3x4 + rhythm strip on the mm grid) and the machine reading (marked as awaiting a
   physician) show; calipers measure. The specialist opens it from the worklist, claims it, corrects a
   measurement, signs behind a confirmation, sees it read-only (signer, time, hash), adds an addendum and
   downloads the PDF; the township doctor then sees the signed report.
2. A ventricular tachycardia written in the documented CSV dialect raises a red critical-value banner on
   the specialist's screen (over the WebSocket), with the count in the navigation, and on the township
   doctor's screen whose socket the test cuts (polling fallback); acknowledging it clears it everywhere.
3. An 8-lead SCP shows the 3x4 with the limb leads derived; a 30-minute MIT-BIH record pages through time.

Screenshots of the viewer and the pages go to /tmp/th-browser/ (TH_SCREENSHOT_DIR).
"""

from __future__ import annotations

import io
import os
import re
import secrets
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SCREENSHOTS, screenshot, shot, sign_in
from tests.conftest import Platform, auth

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
ANALYSIS_TIMEOUT_MS = 120_000
ACTIVE = re.compile(r"(^|\s)active(\s|$)")


def ecg_data() -> Path:
    root = Path(os.environ.get("ECG_DATA_DIR") or REPO.parent / "shared" / "data" / "ecg").resolve()
    if not (root / "formats").is_dir():
        pytest.fail(f"ECG data directory {root} not found (set ECG_DATA_DIR)")
    return root


def register_patient(platform: Platform, token: str, name: str) -> dict[str, object]:
    r = httpx.post(
        f"{platform.gateway_url}/api/health/patients",
        json={"name": name, "sex": "female", "birth_date": "1958-04-12"},
        headers=auth(token),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def vt_csv(fs: float = 500.0, seconds: float = 10.0, hr: float = 190.0) -> bytes:
    """Ventricular tachycardia: wide (~200 ms), fast, P-less complexes in all 12 leads, in the documented
    CSV dialect (``# fs= units=`` line, ``time_ms`` column, lead names as the header)."""
    rng = np.random.default_rng(7)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    x = np.zeros(n)

    def g(mu: float, sigma: float, a: float) -> np.ndarray:
        return a * np.exp(-0.5 * ((t - mu) / sigma) ** 2)

    for c in np.arange(0.3, seconds - 0.2, 60.0 / hr):
        x += g(c, 0.04, 1.4) + g(c + 0.08, 0.04, -0.9) + g(c + 0.2, 0.05, -0.3)
    gains = np.array([0.6, 1.0, 0.4, -0.8, 0.2, 0.7, -0.5, 0.3, 0.8, 1.2, 1.1, 0.9])
    sig = np.outer(x, gains) + rng.normal(0, 0.01, (n, 12))
    out = io.StringIO()
    out.write(f"# fs={fs:g} units=mV start=2026-03-01T08:15:00+08:00\n")
    out.write("time_ms," + ",".join(LEADS) + "\n")
    for i, row in enumerate(sig):
        out.write(f"{i * 1000 / fs:g}," + ",".join(f"{v:.4f}" for v in row) + "\n")
    return out.getvalue().encode()


def wait_viewer(page: Page) -> None:
    canvas = page.get_by_test_id("ecg-viewer-canvas")
    expect(canvas).to_have_attribute("data-ready", "true", timeout=30_000)


def test_upload_read_and_sign(new_page: Page, chromium, platform: Platform, celery_worker, login) -> None:  # type: ignore[no-untyped-def]
    page = new_page
    base = platform.gateway_url
    data = ecg_data()
    patient_name = f"李秀英{secrets.token_hex(2)}"
    register_patient(platform, login("doctor_a"), patient_name)

    # -- the township doctor uploads three files at once ------------------------------------------------
    sign_in(page, base, "doctor_a")
    page.get_by_test_id("nav-item-ecg").click()
    page.get_by_test_id("area-page-ecg").wait_for()
    page.get_by_test_id("ecg-new-upload").click()
    page.get_by_test_id("ecg-upload-page").wait_for()
    expect(page.get_by_test_id("nav-item-ecg")).to_have_class(ACTIVE)  # /ecg/new is still the ECG area

    page.get_by_test_id("ecg-patient-search").fill(patient_name[:5])
    page.get_by_test_id("ecg-patient-option").filter(has_text=patient_name).first.click()
    expect(page.get_by_test_id("ecg-patient-selected")).to_contain_text(patient_name)
    page.get_by_test_id("ecg-priority-urgent").click()
    page.get_by_test_id("ecg-note").fill("胸闷 2 小时，既往高血压")

    # a township line: ~200 kB/s up, so that the progress bars have something to show
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 40, "downloadThroughput": -1, "uploadThroughput": 200 * 1024},
    )
    broken = SCREENSHOTS / "broken.scp"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"this is not an SCP-ECG file at all" * 20)
    page.get_by_test_id("ecg-file-input").set_input_files(
        [
            str(data / "formats" / "dicom" / "waveform_ecg.dcm"),
            str(data / "ludb" / "1.hea"),
            str(data / "ludb" / "1.dat"),
            str(broken),
        ]
    )
    items = page.get_by_test_id("ecg-upload-item")
    expect(items).to_have_count(3)  # the WFDB pair travels as one recording
    assert "1.hea + 1.dat" in items.nth(1).inner_text()
    progress = items.nth(0).get_by_test_id("ecg-upload-progress")
    expect(progress).to_have_attribute("aria-valuenow", re.compile(r"^([1-9]|[1-9]\d)$"))  # part-way
    shot(page.get_by_test_id("ecg-upload-list"), "ecg-upload-progress")
    cdp.send("Network.emulateNetworkConditions",
             {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

    rejected = page.locator("[data-testid='ecg-upload-item'][data-state='rejected']")
    expect(rejected).to_have_count(1, timeout=60_000)
    reason = rejected.get_by_test_id("ecg-upload-rejected").inner_text()
    assert reason.startswith("未能接收：") and len(reason) > len("未能接收：") + 5, reason
    ready = page.locator("[data-testid='ecg-upload-item'][data-state='ready']")
    expect(ready).to_have_count(2, timeout=ANALYSIS_TIMEOUT_MS)
    screenshot(page, "ecg-upload-doctor_a")

    # -- the DICOM recording: tracing and machine reading ------------------------------------------------
    items.nth(0).get_by_test_id("ecg-upload-open").click()
    page.get_by_test_id("ecg-recording-page").wait_for()
    recording_id = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_test_id("ecg-recording-header")).to_contain_text(patient_name)
    expect(page.get_by_test_id("ecg-recording-facility")).to_have_text("城关镇卫生院")
    expect(page.get_by_test_id("nav-item-ecg")).to_have_class(ACTIVE)  # and so is /ecg/recordings/:id
    expect(page.get_by_test_id("nav-item-home")).not_to_have_class(ACTIVE)
    wait_viewer(page)
    canvas = page.get_by_test_id("ecg-viewer-canvas")
    assert canvas.get_attribute("data-layout") == "3x4"
    assert canvas.get_attribute("data-speed") == "25" and canvas.get_attribute("data-gain") == "10"
    machine = page.get_by_test_id("machine-reading")
    expect(machine.get_by_test_id("machine-disclaimer")).to_have_text("机器自动分析，待医生确认")
    expect(machine.get_by_test_id("machine-statements").locator("li").first).to_be_visible()
    qrs_machine = machine.get_by_test_id("machine-qrs_ms").inner_text()
    assert re.search(r"\d", qrs_machine), qrs_machine
    expect(page.get_by_test_id("ecg-report-pending")).to_be_visible()
    shot(page.get_by_test_id("ecg-viewer"), "ecg-viewer-3x4")
    screenshot(page, "ecg-recording-doctor_a")

    # calipers: two clicks one large square (5 mm = 200 ms at 25 mm/s) apart on the rhythm strip
    page.get_by_test_id("viewer-calipers").click()
    overlay = page.get_by_test_id("ecg-viewer-overlay")
    box = overlay.bounding_box()
    assert box is not None
    px_per_mm = float(canvas.get_attribute("data-px-per-mm") or "0")
    assert px_per_mm >= 2
    y = box["height"] - 20 * px_per_mm
    overlay.click(position={"x": 40 * px_per_mm, "y": y})
    overlay.click(position={"x": 65 * px_per_mm, "y": y})  # 25 mm = 1000 ms = 60 bpm
    readout = page.get_by_test_id("viewer-caliper-readout").inner_text()
    assert re.search(r"Δt (99\d|100\d|101\d) ms", readout) and "心率 6" in readout, readout
    shot(page.get_by_test_id("ecg-viewer"), "ecg-viewer-calipers")
    page.get_by_test_id("viewer-calipers").click()

    # speed and gain change the scale; a click on a lead magnifies it
    page.get_by_test_id("viewer-speed").locator("button[data-value='50']").click()
    page.get_by_test_id("viewer-gain").locator("button[data-value='20']").click()
    expect(canvas).to_have_attribute("data-speed", "50")
    expect(canvas).to_have_attribute("data-gain", "20")
    expect(page.get_by_test_id("viewer-scale")).to_contain_text("50 mm/s · 20 mm/mV")
    page.get_by_test_id("viewer-speed").locator("button[data-value='25']").click()
    page.get_by_test_id("viewer-gain").locator("button[data-value='10']").click()
    overlay.click(position={"x": 60 * px_per_mm, "y": 12 * px_per_mm})  # lead I, first column
    expect(canvas).to_have_attribute("data-layout", "single")
    expect(page.get_by_test_id("viewer-lead")).to_have_value("I")
    wait_viewer(page)
    shot(page.get_by_test_id("ecg-viewer"), "ecg-viewer-single-lead")

    # -- the specialist reads and signs it ------------------------------------------------------------
    reader_ctx = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN",
                                      timezone_id="Asia/Shanghai")
    reader_ctx.set_default_timeout(15_000)
    reader = reader_ctx.new_page()
    try:
        sign_in(reader, base, "specialist")
        reader.get_by_test_id("nav-item-ecgReading").click()
        reader.get_by_test_id("ecg-worklist").wait_for()
        row = reader.locator(f"[data-testid='worklist-row'][data-id='{recording_id}']")
        expect(row).to_contain_text(patient_name)
        expect(row.get_by_test_id("priority-badge")).to_have_text("加急")
        # the facility column: the sending township's name, from the gateway's facility directory
        expect(row.get_by_test_id("worklist-facility")).to_have_text("城关镇卫生院")
        screenshot(reader, "ecg-worklist-specialist")
        row.click()
        reader.get_by_test_id("ecg-reading-page").wait_for()
        expect(reader.get_by_test_id("ecg-recording-facility")).to_have_text("城关镇卫生院")
        expect(reader.get_by_test_id("nav-item-ecgReading")).to_have_class(ACTIVE)
        wait_viewer(reader)
        reader.get_by_test_id("ecg-claim").click()
        editor = reader.get_by_test_id("ecg-report-editor")
        editor.wait_for()

        qrs = editor.get_by_test_id("measure-input-qrs_ms")
        machine_qrs = qrs.input_value()
        corrected = str(int(float(machine_qrs or "90")) + 8)
        qrs.fill(corrected)
        editor.get_by_test_id("ecg-statement-new").fill("窦性心律，建议结合临床")
        editor.get_by_test_id("ecg-statement-add").click()
        editor.get_by_test_id("ecg-conclusion").fill("窦性心律，正常范围心电图")
        def is_save(r) -> bool:  # type: ignore[no-untyped-def]
            return bool(r.url.endswith(f"/recordings/{recording_id}/report") and r.request.method == "PUT")

        with reader.expect_response(is_save) as saved:
            editor.get_by_test_id("ecg-save-draft").click()
        assert saved.value.status == 200, saved.value.text()
        assert saved.value.json()["measurements"]["qrs_ms"] == float(corrected)
        expect(editor.get_by_test_id("ecg-save-state")).to_contain_text("已于")
        screenshot(reader, "ecg-reading-draft")

        editor.get_by_test_id("ecg-sign").click()
        dialog = reader.get_by_test_id("ecg-sign-dialog")
        expect(dialog).to_contain_text("签发后报告内容将不可修改")
        dialog.get_by_test_id("ecg-sign-confirm").click()

        report = reader.get_by_test_id("ecg-report")
        expect(report).to_have_attribute("data-status", "signed")
        expect(reader.get_by_test_id("ecg-report-editor")).to_have_count(0)  # read-only now
        expect(reader.get_by_test_id("ecg-signer")).to_have_text(re.compile(r"\S"))
        expect(reader.get_by_test_id("ecg-report-hash")).to_have_text(re.compile(r"^[0-9a-f]{16}…$"))
        expect(reader.get_by_test_id("report-qrs_ms")).to_contain_text(corrected)
        expect(reader.get_by_test_id("ecg-report-conclusion")).to_have_text("窦性心律，正常范围心电图")
        assert reader.locator("input[data-testid^='measure-input-']").count() == 0

        reader.get_by_test_id("ecg-addendum-text").fill("补充：患者复查心电图无动态变化。")
        reader.get_by_test_id("ecg-addendum-submit").click()
        expect(reader.get_by_test_id("ecg-addendum")).to_contain_text("补充：患者复查心电图无动态变化。")

        pdf_button = reader.get_by_test_id("ecg-report-pdf")
        expect(pdf_button).to_have_attribute("data-ready", "true", timeout=60_000)
        with reader.expect_download() as dl:
            pdf_button.click()
        pdf_path = SCREENSHOTS / "ecg-report.pdf"
        dl.value.save_as(str(pdf_path))
        assert pdf_path.read_bytes()[:5] == b"%PDF-"
        screenshot(reader, "ecg-reading-signed")
    finally:
        reader_ctx.close()

    # -- back at the township: the signed report is there -------------------------------------------
    page.reload()
    report = page.get_by_test_id("ecg-report")
    expect(report).to_have_attribute("data-status", "signed")
    expect(page.get_by_test_id("ecg-report-conclusion")).to_have_text("窦性心律，正常范围心电图")
    expect(page.get_by_test_id("ecg-report-pdf")).to_be_visible()
    screenshot(page, "ecg-recording-signed-doctor_a")
    page.get_by_test_id("ecg-back").click()
    row = page.locator(f"[data-testid='ecg-recording-row'][data-id='{recording_id}']")
    expect(row).to_have_attribute("data-status", "signed")
    screenshot(page, "ecg-list-doctor_a")


def test_critical_trace_alerts_the_reader(chromium, web_dist, platform: Platform, celery_worker) -> None:  # type: ignore[no-untyped-def]
    base = platform.gateway_url

    def context():  # type: ignore[no-untyped-def]
        ctx = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", timezone_id="Asia/Shanghai")
        ctx.set_default_timeout(15_000)
        return ctx

    reader_ctx, doctor_ctx = context(), context()
    # the doctor's alert socket is cut at once, every time: that screen must fall back to polling
    doctor_ctx.route_web_socket(re.compile(r"/api/ecg/alerts/ws"),
                                lambda ws: ws.close(code=1011, reason="cut by the test"))
    try:
        reader = reader_ctx.new_page()
        sign_in(reader, base, "specialist")
        reader.get_by_test_id("nav-item-ecgReading").click()
        reader.get_by_test_id("area-page-ecgReading").wait_for()

        doctor = doctor_ctx.new_page()
        sign_in(doctor, base, "doctor_a")
        doctor.goto(f"{base}/ecg/new")
        doctor.get_by_test_id("ecg-priority-stat").click()
        vt = SCREENSHOTS / "vt_190bpm.csv"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        vt.write_bytes(vt_csv())
        doctor.get_by_test_id("ecg-file-input").set_input_files(str(vt))
        item = doctor.get_by_test_id("ecg-upload-item")
        expect(item).to_have_attribute("data-state", re.compile("analysing|ready"), timeout=60_000)
        href = item.get_by_test_id("ecg-upload-open").get_attribute("href") or ""
        recording_id = href.rsplit("/", 1)[-1]
        assert re.fullmatch(r"[0-9a-f-]{36}", recording_id), href

        # the reader's screen turns red without a reload (WebSocket), with the count in the navigation
        alert = reader.locator(f"[data-testid='critical-alert'][data-recording-id='{recording_id}']")
        expect(alert).to_be_visible(timeout=ANALYSIS_TIMEOUT_MS)
        expect(alert.get_by_test_id("critical-message")).to_contain_text("危急值")
        banner = reader.get_by_test_id("critical-banner")
        color = banner.evaluate("el => getComputedStyle(el).backgroundColor")
        assert color == "rgb(198, 40, 40)", color
        count = reader.get_by_test_id("nav-item-ecgReading").get_by_test_id("nav-alert-count")
        expect(count).to_have_text(re.compile(r"^[1-9]\d*$"))
        row = reader.locator(f"[data-testid='worklist-row'][data-id='{recording_id}']")
        expect(row).to_have_attribute("data-critical", "true", timeout=30_000)
        first = reader.get_by_test_id("worklist-row").first
        assert first.get_attribute("data-critical") == "true"
        screenshot(reader, "ecg-critical-specialist")

        # the township doctor sees it too, on the page it was uploaded from, by polling (socket cut)
        expect(doctor.locator(f"[data-testid='critical-alert'][data-recording-id='{recording_id}']")).to_be_visible(
            timeout=30_000
        )
        expect(doctor.get_by_test_id("critical-banner")).to_contain_text("实时连接中断")
        expect(reader.get_by_test_id("critical-banner")).not_to_contain_text("实时连接中断")  # live there
        screenshot(doctor, "ecg-critical-doctor_a")

        # open it from the banner, acknowledge with a note: it leaves every screen
        alert.get_by_test_id("critical-open").click()
        reader.get_by_test_id("ecg-reading-page").wait_for()
        wait_viewer(reader)
        expect(reader.get_by_test_id("recording-alert")).to_be_visible()
        shot(reader.get_by_test_id("ecg-viewer"), "ecg-viewer-vt")
        alert = reader.locator(f"[data-testid='critical-alert'][data-recording-id='{recording_id}']")
        alert.get_by_test_id("critical-ack").click()
        alert.get_by_test_id("critical-ack-note").fill("已电话通知城关镇卫生院，患者转诊")
        alert.get_by_test_id("critical-ack-confirm").click()
        expect(alert).to_have_count(0)
        expect(reader.get_by_test_id("recording-alert")).to_have_count(0)
        expect(doctor.locator(f"[data-testid='critical-alert'][data-recording-id='{recording_id}']")).to_have_count(
            0, timeout=30_000
        )
    finally:
        reader_ctx.close()
        doctor_ctx.close()


def upload_via_api(platform: Platform, token: str, paths: list[Path], **fields: str) -> dict[str, object]:
    files = [("file", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    r = httpx.post(f"{platform.gateway_url}/api/ecg/recordings", files=files, data=fields, headers=auth(token),
                   timeout=120)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_partial_and_long_records_in_the_viewer(new_page: Page, platform: Platform, celery_worker, login) -> None:  # type: ignore[no-untyped-def]
    """An 8-lead SCP (limb leads derived from I and II for the 3x4), and a 30-minute two-lead MIT-BIH record
    (12x1 with navigation through time, fetched in windows), each drawn quickly."""
    page = new_page
    base = platform.gateway_url
    data = ecg_data()
    token = login("doctor_a")
    eight = upload_via_api(platform, token, [data / "formats" / "scp" / "demo.scp"])
    long = upload_via_api(platform, token,
                          [data / "mitdb" / "100.hea", data / "mitdb" / "100.dat", data / "mitdb" / "100.atr"])
    assert long["lead_names"] == ["II", "V5"] and float(str(long["duration_s"])) > 1800

    sign_in(page, base, "doctor_a")
    page.goto(f"{base}/ecg/recordings/{eight['id']}")
    wait_viewer(page)
    canvas = page.get_by_test_id("ecg-viewer-canvas")
    assert canvas.get_attribute("data-layout") == "3x4"  # III, aVR, aVL, aVF computed from I and II
    expect(page.get_by_test_id("ecg-viewer")).to_contain_text("由 I、II 导联计算得出")
    expect(page.get_by_test_id("viewer-lead").locator("option[value='aVF']")).to_have_text("aVF*")
    shot(page.get_by_test_id("ecg-viewer"), "ecg-viewer-8-lead-derived")
    page.get_by_test_id("lang-switch").click()  # English too: labels, the machine reading, its statements
    expect(page.get_by_test_id("viewer-speed")).to_contain_text("Speed")
    expect(page.get_by_test_id("machine-disclaimer")).to_have_text("Machine analysis — awaiting physician confirmation")
    screenshot(page, "ecg-recording-8-lead-en")
    page.get_by_test_id("lang-switch").click()

    page.goto(f"{base}/ecg/recordings/{long['id']}")
    wait_viewer(page)
    assert canvas.get_attribute("data-layout") == "12x1"  # two leads: one strip each
    expect(page.get_by_test_id("viewer-layout").locator("button[data-value='3x4']")).to_be_disabled()
    expect(page.get_by_test_id("viewer-position")).to_be_visible()
    draw_ms = [float(canvas.get_attribute("data-draw-ms") or "1e9")]
    before = page.locator(".ecg-nav-time").inner_text()
    page.get_by_test_id("viewer-speed").locator("button[data-value='12.5']").click()  # 20 s per screen
    for _ in range(3):
        page.get_by_test_id("viewer-next").click()
        wait_viewer(page)
        draw_ms.append(float(canvas.get_attribute("data-draw-ms") or "1e9"))
    assert page.locator(".ecg-nav-time").inner_text() != before
    # far into the record: a window outside the first fetch is loaded on demand
    page.get_by_test_id("viewer-position").fill("15000")  # tenths of a second: 25 min in
    wait_viewer(page)
    expect(page.locator(".ecg-nav-time")).to_contain_text("25:00.0")
    draw_ms.append(float(canvas.get_attribute("data-draw-ms") or "1e9"))
    shot(page.get_by_test_id("ecg-viewer"), "ecg-viewer-mitdb-12.5mms")
    # smooth on a modest PC: each full redraw (grid, both leads, labels) in well under a frame budget x 10
    assert max(draw_ms) < 150, draw_ms

    # the technician of the same centre: the upload page lists the centre's recent recordings
    page.get_by_test_id("logout").click()
    page.get_by_test_id("login-form").wait_for()
    sign_in(page, base, "tech_a")
    page.get_by_test_id("nav-item-ecgUpload").click()
    page.get_by_test_id("area-page-ecgUpload").wait_for()
    row = page.locator(f"[data-testid='ecg-recording-row'][data-id='{long['id']}']")
    expect(row).to_be_visible()
    row.get_by_test_id("ecg-recording-open").click()
    page.get_by_test_id("ecg-recording-page").wait_for()
    wait_viewer(page)
    page.get_by_test_id("ecg-back").click()
    page.get_by_test_id("area-page-ecgUpload").wait_for()


def test_the_reader_on_duty_sees_alerts_assigned_to_them(new_page: Page, platform: Platform, celery_worker, login,
                                                         stack) -> None:  # type: ignore[no-untyped-def]
    """我的值班: with nobody on duty a critical value says so; the specialist goes on duty from the worklist,
    the next one is marked as assigned to them; they end the shift."""
    from tests.ecg.ecg_service_support import clear_roster

    clear_roster(stack.database_url)
    page, base, doctor = new_page, platform.gateway_url, login("doctor_a")

    def vt_upload() -> str:
        r = httpx.post(f"{base}/api/ecg/recordings", files=[("file", ("vt.csv", vt_csv(), "text/csv"))],
                       data={"priority": "stat"}, headers=auth(doctor), timeout=60)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def alert_of(recording_id: str):  # type: ignore[no-untyped-def]
        return page.locator(f"[data-testid='critical-alert'][data-recording-id='{recording_id}']")

    sign_in(page, base, "specialist")
    page.get_by_test_id("nav-item-ecgReading").click()
    page.get_by_test_id("ecg-duty-link").click()
    page.get_by_test_id("ecg-duty-page").wait_for()
    expect(page.get_by_test_id("ecg-duty-nobody")).to_be_visible()
    unassigned = vt_upload()
    expect(alert_of(unassigned).get_by_test_id("critical-unassigned")).to_have_text("无值班医生",
                                                                                    timeout=ANALYSIS_TIMEOUT_MS)
    expect(alert_of(unassigned)).to_have_attribute("data-for-you", "false")

    page.get_by_test_id("ecg-duty-hours").select_option("2")
    page.get_by_test_id("ecg-duty-start").click()
    expect(page.get_by_test_id("ecg-duty-mine")).to_have_attribute("data-on-duty", "true")
    expect(page.get_by_test_id("ecg-duty-reader")).to_contain_text("孙主任")
    mine = vt_upload()
    expect(alert_of(mine).get_by_test_id("critical-for-you")).to_have_text("指派给您", timeout=ANALYSIS_TIMEOUT_MS)
    expect(page.get_by_test_id("critical-banner")).to_have_attribute("data-for-you", "true")
    screenshot(page, "ecg-duty-assigned-to-you")

    page.get_by_test_id("ecg-duty-end").click()
    expect(page.get_by_test_id("ecg-duty-mine")).to_have_attribute("data-on-duty", "false")
    expect(page.get_by_test_id("ecg-duty-nobody")).to_be_visible()
    for alert_id in {a["id"] for a in httpx.get(f"{base}/api/ecg/alerts", headers=auth(doctor)).json()["items"]
                     if a["recording_id"] in (unassigned, mine)}:
        assert httpx.post(f"{base}/api/ecg/alerts/{alert_id}/acknowledge", headers=auth(doctor)).status_code == 200
    expect(alert_of(mine)).to_have_count(0, timeout=30_000)
