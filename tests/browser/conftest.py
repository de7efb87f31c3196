"""Browser-test harness: the built web app and the system's headless Chromium (Debian's, never a download)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.identity.seed import DEMO_PASSWORD

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web"
CHROMIUM = os.environ.get("TH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# For WebRTC (the consult rooms): fake camera and microphone, no permission prompts, loopback ICE candidates
# (everything runs on one machine), media that plays without a click.
CHROMIUM_MEDIA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOTS = Path(os.environ.get("TH_SCREENSHOT_DIR", "/tmp/th-browser"))


@pytest.fixture(scope="session")
def web_dist() -> Path:
    """web/dist built from the current sources (the gateway serves it at /): `npm ci` once, then a build."""
    npm = shutil.which("npm")
    if npm is None:
        if (WEB / "dist" / "index.html").is_file():
            return WEB / "dist"
        pytest.fail("npm is missing and web/dist is not built: run `make web`")
    if not (WEB / "node_modules" / ".bin" / "vite").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WEB, check=True)
    subprocess.run([npm, "run", "build", "--silent"], cwd=WEB, check=True, stdout=subprocess.DEVNULL)
    return WEB / "dist"


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One headless Chromium per test module; each test opens its own context (fresh storage).

    Playwright's sync API keeps an asyncio loop running in this thread while it is open, so it must not
    outlive the module: the session's async fixtures and other modules' asyncio tests need the thread free.
    Session fixtures (the platform) are set up before it, being of wider scope.
    """
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: `apt-get install -y chromium` (or `make browser-deps`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def media_chromium() -> Iterator[object]:
    """Like ``chromium``, with fake media devices and loopback WebRTC (CHROMIUM_MEDIA_ARGS)."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: `apt-get install -y chromium` (or `make browser-deps`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *CHROMIUM_MEDIA_ARGS])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(chromium: object, web_dist: Path) -> Iterator[object]:
    """A page at 1366x768 (a township centre's PC) in a fresh context, Chinese locale, Beijing time."""
    from playwright.sync_api import Browser

    assert isinstance(chromium, Browser)
    context = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def shot(locator: object, name: str) -> Path:
    """Save a screenshot of one element (a viewer, a dialog) under TH_SCREENSHOT_DIR."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    locator.screenshot(path=str(path))  # type: ignore[attr-defined]
    return path


def sign_in(page: object, base: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in a demo account that has no second factor and wait for its home page."""
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.get_by_test_id("login-username").fill(username)  # type: ignore[attr-defined]
    page.get_by_test_id("login-password").fill(password)  # type: ignore[attr-defined]
    page.get_by_test_id("login-submit").click()  # type: ignore[attr-defined]
    page.get_by_test_id("home-greeting").wait_for()  # type: ignore[attr-defined]


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot under TH_SCREENSHOT_DIR (default /tmp/th-browser) for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
