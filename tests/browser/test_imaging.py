"""The imaging cloud in a real browser, through the real gateway and imaging service.

1. The township technician uploads a CT series (12 slices generated from pydicom's CT_small.dcm), a
   truncated DICOM file and a text file at once, on a slow line: per-file progress shows; the connection
   drops mid-upload and the page resumes by itself without resending what the archive already has; the
   truncated file is listed with the archive's reason, the text file is set aside as not DICOM.
   The study goes in as STAT with a clinical question.
2. The specialist sees it head the reading worklist, finds it by patient ID in the study search, opens it in
   the viewer (cornerstone3D), pages through the stack with the wheel and the keyboard, switches to the lung
   window (the pixels change), measures a length (a value in mm, matching PixelSpacing), plays cine; then
   claims it (the CT template), writes findings and impression and signs behind a confirmation.
3. The township doctor sees the study in their list with its thumbnail and reads the signed report.

Screenshots go to /tmp/th-browser/ (TH_SCREENSHOT_DIR).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot, shot, sign_in
from tests.conftest import Platform

pytestmark = pytest.mark.browser

N_SLICES = 12
ACTIVE = re.compile(r"(^|\s)active(\s|$)")


def pydicom_file(name: str) -> str:
    """The path of one of pydicom's test files."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    assert isinstance(path, str), name
    return path


def make_ct_series(directory: Path, patient_id: str) -> tuple[str, list[Path], float]:
    """N_SLICES axial CT slices (128x128, 16-bit, HU = raw - 1024) from CT_small.dcm with a soft-tissue
    nodule in the right lung that grows and shrinks through the stack (so that paging visibly changes the
    image, as it would in a real chest CT); returns the study UID, the files and PixelSpacing."""
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    src = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    study, series = generate_uid(), generate_uid()
    base = src.pixel_array
    files = []
    for i in range(N_SLICES):
        ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName = "Wang^Fang=王^芳"
        ds.PatientID = patient_id
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyDescription = "胸部 CT 平扫"
        ds.SeriesDescription = "Chest 5mm"
        ds.StudyDate = "20260301"
        ds.InstanceNumber = i + 1
        z = float(ds.ImagePositionPatient[2]) + 5.0 * i
        ds.ImagePositionPatient = [ds.ImagePositionPatient[0], ds.ImagePositionPatient[1], z]
        ds.SliceLocation = z
        radius = 7.0 * max(0.0, 1.0 - ((i - 4) / 5) ** 2) ** 0.5  # largest on slice 5, gone by slice 10
        rows, cols = np.ogrid[: base.shape[0], : base.shape[1]]
        nodule = (rows - 30) ** 2 + (cols - 16) ** 2 <= radius**2
        pixels = base.copy()
        pixels[nodule] = 1024 + 30  # ~30 HU
        ds.PixelData = pixels.astype(base.dtype).tobytes()
        path = directory / f"IM{i + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return study, files, float(src.PixelSpacing[0])


def canvas_digest(page: Page) -> str:
    """A hash of the viewport canvas's pixels (what the reader sees)."""
    data = page.evaluate(
        """() => {
            const c = document.querySelector('[data-testid=imaging-viewport] canvas');
            const off = document.createElement('canvas');
            off.width = c.width; off.height = c.height;
            off.getContext('2d').drawImage(c, 0, 0);
            const d = off.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let s = 0, lit = 0;
            for (let i = 0; i < d.length; i += 4) { s = (s * 31 + d[i]) >>> 0; if (d[i] > 16) lit++; }
            return s + ':' + lit;
        }"""
    )
    lit = int(str(data).split(":")[1])
    assert lit > 500, f"the viewport is (nearly) black: {data}"
    return hashlib.sha256(str(data).encode()).hexdigest()


def test_upload_view_measure(new_page: Page, chromium, platform: Platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = new_page
    base = platform.gateway_url
    patient_id = f"CT{secrets.token_hex(4).upper()}"
    study, files, spacing = make_ct_series(tmp_path, patient_id)
    truncated = tmp_path / "broken.dcm"
    truncated.write_bytes(files[0].read_bytes()[:-9000])
    (tmp_path / "notes.txt").write_text("not an image")

    # -- the technician uploads on a slow line, which drops for a moment --------------------------------
    sign_in(page, base, "tech_a")
    page.get_by_test_id("nav-item-imagingUpload").click()
    page.get_by_test_id("area-page-imagingUpload").wait_for()
    page.get_by_test_id("imaging-priority-stat").click()
    page.get_by_test_id("imaging-question").fill("咳嗽 2 周，排除肺部占位")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 40, "downloadThroughput": -1, "uploadThroughput": 60 * 1024},
    )
    page.get_by_test_id("imaging-file-input").set_input_files(
        [str(p) for p in files[:6]] + [str(truncated)] + [str(p) for p in files[6:]] + [str(tmp_path / "notes.txt")]
    )
    items = page.get_by_test_id("imaging-upload-item")
    expect(items).to_have_count(N_SLICES + 2)
    expect(page.locator("[data-testid='imaging-upload-item'][data-state='ignored']")).to_have_count(1)
    uploading = page.locator("[data-testid='imaging-upload-item'][data-state='uploading']")
    expect(uploading.first).to_be_visible()
    expect(page.get_by_test_id("imaging-upload-progress").first).to_have_attribute(
        "aria-valuenow", re.compile(r"^([1-9]|[1-9]\d)$"), timeout=20_000
    )  # part-way
    shot(page.get_by_test_id("imaging-upload-list"), "imaging-upload-progress")

    # the line drops in the middle of a batch, then comes back: the page resumes by itself
    page.wait_for_timeout(800)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
    )
    expect(page.get_by_test_id("imaging-offline")).to_be_visible(timeout=20_000)
    shot(page.get_by_test_id("imaging-upload-list"), "imaging-upload-offline")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    summary = page.get_by_test_id("imaging-upload-summary")
    expect(page.locator("[data-testid='imaging-upload-item'][data-state='failed']")).to_have_count(1, timeout=60_000)
    done = page.locator(
        "[data-testid='imaging-upload-item'][data-state='stored'], "
        "[data-testid='imaging-upload-item'][data-state='already']"
    )
    expect(done).to_have_count(N_SLICES, timeout=60_000)
    expect(page.get_by_test_id("imaging-offline")).to_have_count(0)
    failed = page.locator("[data-testid='imaging-upload-item'][data-state='failed']")
    assert "broken.dcm" in failed.inner_text()
    reason = failed.get_by_test_id("imaging-upload-reason").inner_text()
    assert "无法识别" in reason and "trunc" in reason.lower(), reason
    assert "已上传" in summary.inner_text() and "失败 1" in summary.inner_text(), summary.inner_text()
    expect(page.get_by_test_id("imaging-upload-open")).to_have_attribute("data-study", study)
    expect(page.get_by_test_id("imaging-upload-open")).to_contain_text("急诊")  # the priority went to reading
    screenshot(page, "imaging-upload-tech_a")

    # retrying the failed file fails the same way (the archive's reason again), nothing else is resent
    page.get_by_test_id("imaging-retry-failed").click()
    expect(failed).to_have_count(1, timeout=30_000)
    expect(done).to_have_count(N_SLICES)
    page.get_by_test_id("logout").click()
    page.get_by_test_id("login-form").wait_for()

    # -- the specialist: the STAT study heads the worklist; the search finds it too ---------------------
    sign_in(page, base, "specialist")
    page.get_by_test_id("nav-item-readingWorklist").click()
    page.get_by_test_id("area-page-readingWorklist").wait_for()
    wrow = page.locator(f"[data-testid='worklist-row'][data-study='{study}']")
    expect(wrow).to_have_count(1)
    expect(wrow).to_have_attribute("data-priority", "stat")
    expect(wrow).to_have_attribute("data-status", "new")
    expect(wrow).to_contain_text("王芳")
    expect(wrow).to_contain_text("排除肺部占位")
    screenshot(page, "imaging-worklist-specialist")
    page.get_by_test_id("imaging-tab-search").click()
    page.get_by_test_id("imaging-search-pid").fill(patient_id)
    page.get_by_test_id("imaging-search-modality").select_option("CT")
    page.get_by_test_id("imaging-search-submit").click()
    rows = page.get_by_test_id("imaging-study-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-study", study)
    expect(rows.first).to_contain_text("王芳")
    expect(rows.first).to_contain_text("2026-03-01")
    expect(rows.first.get_by_test_id("imaging-study-thumb")).to_have_attribute("data-loaded", "true", timeout=20_000)
    screenshot(page, "imaging-list-specialist")
    rows.first.click()

    page.get_by_test_id("imaging-viewer-page").wait_for()
    expect(page.get_by_test_id("nav-item-readingWorklist")).to_have_class(ACTIVE)  # the viewer belongs to the worklist
    viewport = page.get_by_test_id("imaging-viewport")
    expect(viewport).to_have_attribute("data-ready", "true", timeout=60_000)
    expect(viewport).to_have_attribute("data-count", str(N_SLICES))
    expect(page.get_by_test_id("imaging-series-thumb").first).to_have_attribute("data-loaded", "true", timeout=20_000)
    expect(page.get_by_test_id("imaging-image-index")).to_have_text(f"图像 1/{N_SLICES}")
    page.wait_for_timeout(300)
    first = canvas_digest(page)
    shot(page.get_by_test_id("imaging-viewer"), "imaging-viewer-default")

    # stack scrolling: the wheel, then the keyboard
    box = viewport.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(3):
        page.mouse.wheel(0, 120)
        page.wait_for_timeout(150)
    expect(viewport).not_to_have_attribute("data-index", "0")
    index_after_wheel = int(viewport.get_attribute("data-index") or "0")
    page.keyboard.press("ArrowDown")
    expect(viewport).to_have_attribute("data-index", str(index_after_wheel + 1))
    page.keyboard.press("Home")
    expect(viewport).to_have_attribute("data-index", "0")
    page.keyboard.press("End")
    expect(viewport).to_have_attribute("data-index", str(N_SLICES - 1))
    page.wait_for_timeout(300)
    assert canvas_digest(page) != first, "paging did not change the image"

    # window presets: lung, then mediastinum; each changes what is drawn
    before = canvas_digest(page)
    page.get_by_test_id("imaging-preset-lung").click()
    expect(viewport).to_have_attribute("data-wc", "-600")
    expect(viewport).to_have_attribute("data-ww", "1500")
    expect(page.get_by_test_id("imaging-wl")).to_contain_text("窗位 -600 / 窗宽 1500")
    page.wait_for_timeout(300)
    lung = canvas_digest(page)
    assert lung != before, "the lung window did not change the pixels"
    shot(page.get_by_test_id("imaging-viewer"), "imaging-viewer-lung")
    page.get_by_test_id("imaging-preset-mediastinum").click()
    expect(viewport).to_have_attribute("data-wc", "40")
    page.wait_for_timeout(300)
    assert canvas_digest(page) != lung

    # drag window/level with the left button
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2 + 40, steps=6)
    page.mouse.up()
    assert viewport.get_attribute("data-ww") != "400" or viewport.get_attribute("data-wc") != "40"

    # a length: half the displayed image's height, in mm from PixelSpacing
    page.get_by_test_id("imaging-tool-length").click()
    side = min(box["width"], box["height"])  # the square image fits the shorter side
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy - side / 4)
    page.mouse.down()
    page.mouse.move(cx, cy + side / 4, steps=8)
    page.mouse.up()
    measurement = page.get_by_test_id("imaging-measurement")
    expect(measurement).to_have_count(1)
    expect(measurement).to_have_attribute("data-unit", "mm")
    expect(measurement).to_contain_text("mm")
    value = float(measurement.get_attribute("data-value") or "0")
    expected = 128 * spacing / 2
    assert abs(value - expected) / expected < 0.15, (value, expected)
    shot(page.get_by_test_id("imaging-viewer"), "imaging-viewer-measure")

    # cine
    page.get_by_test_id("imaging-cine").click()
    expect(page.get_by_test_id("imaging-cine")).to_have_attribute("data-playing", "true")
    page.wait_for_timeout(700)
    page.get_by_test_id("imaging-cine").click()
    expect(page.get_by_test_id("imaging-cine")).to_have_attribute("data-playing", "false")
    screenshot(page, "imaging-viewer-specialist")

    # -- the report: claim (the CT template), write, sign behind a confirmation ---------------------------
    report = page.get_by_test_id("imaging-report")
    expect(report).to_have_attribute("data-status", "none")
    page.get_by_test_id("imaging-claim").click()
    findings = page.get_by_test_id("imaging-findings")
    expect(findings).to_contain_text("平扫所见")  # the CT template
    findings.fill("胸部 CT 平扫：右肺上叶见一类圆形软组织密度结节，直径约 9 mm，边缘光整。纵隔未见肿大淋巴结。")
    page.get_by_test_id("imaging-impression").fill("1. 右肺上叶结节，建议 3 个月后复查胸部 CT。")
    page.get_by_test_id("imaging-save").click()
    expect(page.get_by_test_id("imaging-save-state")).to_contain_text("已于")
    page.get_by_test_id("imaging-sign").click()
    page.get_by_test_id("imaging-sign-dialog").wait_for()
    page.get_by_test_id("imaging-sign-confirm").click()
    expect(report).to_have_attribute("data-status", "signed")
    expect(page.get_by_test_id("imaging-signed-info")).to_contain_text("签发")
    assert re.fullmatch(r"[0-9a-f]{64}", page.get_by_test_id("imaging-report-hash").inner_text().strip())
    page.get_by_test_id("imaging-report").scroll_into_view_if_needed()
    shot(report, "imaging-report-signed")
    page.get_by_test_id("logout").click()
    page.get_by_test_id("login-form").wait_for()

    # -- the township doctor sees the study in their list ------------------------------------------------
    sign_in(page, base, "doctor_a")
    page.get_by_test_id("nav-item-imaging").click()
    page.get_by_test_id("area-page-imaging").wait_for()
    row = page.locator(f"[data-testid='imaging-study-row'][data-study='{study}']")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("imaging-study-thumb")).to_have_attribute("data-loaded", "true", timeout=20_000)
    screenshot(page, "imaging-list-doctor_a")
    row.click()
    page.get_by_test_id("imaging-viewer-page").wait_for()
    expect(page.get_by_test_id("nav-item-imaging")).to_have_class(ACTIVE)
    expect(page.get_by_test_id("imaging-report")).to_have_attribute("data-status", "signed")
    expect(page.get_by_test_id("imaging-report-impression")).to_contain_text("右肺上叶结节")
    expect(page.get_by_test_id("imaging-viewport")).to_have_attribute("data-ready", "true", timeout=60_000)
    screenshot(page, "imaging-study-doctor_a")
    page.get_by_test_id("imaging-back").click()
    page.get_by_test_id("imaging-new-upload").click()
    page.get_by_test_id("imaging-upload-page").wait_for()  # /imaging/new: the doctor's own upload
    expect(page.get_by_test_id("nav-item-imaging")).to_have_class(ACTIVE)


def test_zip_multiframe_and_compressed(new_page: Page, chromium, platform: Platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A ZIP (unpacked in the browser) with a 10-frame MR and a JPEG 2000 colour ultrasound: the multi-frame
    pages frame by frame and plays as cine; the compressed colour image decodes and shows."""
    import zipfile

    import pydicom
    from pydicom.uid import generate_uid

    page = new_page
    base = platform.gateway_url
    patient_id = f"ZIP{secrets.token_hex(4).upper()}"
    study = generate_uid()
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("emri_small.dcm", "US1_J2KR.dcm", "image_dfl.dcm"):
            ds = pydicom.dcmread(pydicom_file(name))
            ds.PatientID, ds.PatientName, ds.StudyInstanceUID = patient_id, "Li^Na", study
            ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            out = tmp_path / name
            ds.save_as(out, enforce_file_format=True)
            z.write(out, f"DICOM/{name}")

    folder = tmp_path / "CD" / "DICOM"
    folder.mkdir(parents=True)
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    ds.PatientID, ds.PatientName, ds.StudyInstanceUID = patient_id, "Li^Na", study
    ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(folder / "IM0001", enforce_file_format=True)
    (folder / "DICOMDIR.txt").write_text("index")

    sign_in(page, base, "tech_b")
    page.get_by_test_id("nav-item-imagingUpload").click()
    page.get_by_test_id("imaging-file-input").set_input_files(str(archive))
    done = page.locator("[data-testid='imaging-upload-item'][data-state='stored']")
    expect(done).to_have_count(3, timeout=60_000)
    assert "study.zip/DICOM/emri_small.dcm" in page.get_by_test_id("imaging-upload-list").inner_text()
    # a folder (webkitdirectory) into the same study: the DICOM file goes, the other one is set aside
    page.get_by_test_id("imaging-folder-input").set_input_files(str(tmp_path / "CD"))
    expect(done).to_have_count(4, timeout=60_000)
    expect(page.locator("[data-testid='imaging-upload-item'][data-state='ignored']")).to_have_count(1)
    assert "CD/DICOM/IM0001" in page.get_by_test_id("imaging-upload-list").inner_text()
    page.get_by_test_id("imaging-upload-open").click()

    viewport = page.get_by_test_id("imaging-viewport")
    series = page.get_by_test_id("imaging-series")
    expect(series).to_have_count(4)
    # the series that opens by default settles first, so choosing the MR is not raced by it
    expect(viewport).to_have_attribute("data-ready", "true", timeout=60_000)
    mr = page.locator("[data-testid='imaging-series']", has_text="MR")
    mr.click()
    expect(mr).to_have_attribute("aria-pressed", "true")
    expect(viewport).to_have_attribute("data-count", "10", timeout=30_000)
    expect(viewport).to_have_attribute("data-ready", "true", timeout=60_000)
    expect(page.get_by_test_id("imaging-slice-position")).to_have_text("帧 1/10")
    page.get_by_test_id("imaging-fps").fill("20")
    page.get_by_test_id("imaging-cine").click()
    seen = set()
    for _ in range(12):
        page.wait_for_timeout(100)
        seen.add(viewport.get_attribute("data-index"))
    page.get_by_test_id("imaging-cine").click()
    assert len(seen) >= 3, f"cine did not advance the frames: {seen}"
    shot(page.get_by_test_id("imaging-viewer"), "imaging-viewer-mr-multiframe")

    page.locator("[data-testid='imaging-series']", has_text="US").click()
    expect(viewport).to_have_attribute("data-count", "1", timeout=30_000)
    expect(viewport).to_have_attribute("data-ready", "true", timeout=60_000)
    page.wait_for_timeout(500)
    expect(page.get_by_test_id("imaging-viewer-error")).to_have_count(0)
    canvas_digest(page)  # not black
    shot(page.get_by_test_id("imaging-viewer"), "imaging-viewer-us-j2k")

    # deflated explicit VR little endian: the server inflates the frames, so the viewer draws real pixels
    # (never the rendered-JPEG fallback) and all tools still work
    page.locator("[data-testid='imaging-series']", has_text="OT").click()
    expect(viewport).to_have_attribute("data-mode", re.compile("^(cornerstone|uncompressed)$"), timeout=30_000)
    expect(viewport).to_have_attribute("data-ready", "true", timeout=60_000)
    expect(page.get_by_test_id("imaging-viewer-error")).to_have_count(0)
    page.wait_for_timeout(500)
    shot(page.get_by_test_id("imaging-viewer"), "imaging-viewer-deflate")
    canvas_digest(page)  # real pixels on the canvas, not black

    # frames that cannot be had at all: the server's rendered JPEGs stand in (paging still works)
    page.route(
        lambda url: "/frames/" in url and "/rendered" not in url,
        lambda route: route.fulfill(status=503, body="unavailable"),
    )
    page.reload()  # forget the frames already decoded in this page, so the MR series must fetch again
    # let the series that opens by default settle (it falls back too) before choosing the MR, so the choice
    # is not raced by the default one
    expect(series).to_have_count(4)
    expect(viewport).to_have_attribute("data-mode", "rendered", timeout=30_000)
    mr.click()
    expect(mr).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("imaging-image-index")).to_have_text("图像 1/10", timeout=30_000)
    expect(viewport).to_have_attribute("data-mode", "rendered", timeout=30_000)
    rendered = page.get_by_test_id("imaging-rendered").locator("img")
    expect(rendered).to_be_visible(timeout=30_000)
    first_src = rendered.get_attribute("src")
    page.get_by_test_id("imaging-viewport-wrap").focus()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_test_id("imaging-image-index")).to_have_text("图像 2/10")
    expect(rendered).not_to_have_attribute("src", first_src or "")
    expect(page.get_by_test_id("imaging-rendered-note")).to_be_visible()
    shot(page.get_by_test_id("imaging-viewer"), "imaging-viewer-rendered-fallback")
