"""Signing in through the real gateway in headless Chromium: each demo role reaches its own home page.

Also: a wrong password, a wrong TOTP code, a locked account and the login rate limit each say so plainly;
the English switch changes the labels and survives a reload (which also restores the session from the
tab's refresh token); signing out forgets the session.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.conftest import Platform, _wait_ready, fresh_totp, totp_for

pytestmark = pytest.mark.browser

PASSWORD = "Demo@2026"
# Areas whose pages are built (web/src/areaPages.tsx); every other home card says "coming soon".
LIVE_AREAS = frozenset(
    {"systemStatus", "ecg", "ecgUpload", "ecgReading", "imaging", "imagingUpload", "readingWorklist",
     "facilities", "users", "facilityUsers", "audit", "consults"}
)


@dataclass(frozen=True)
class RoleHome:
    username: str
    role: str
    facility_zh: str
    areas: tuple[str, ...]  # data-testid suffixes of nav items and home cards, in order
    nav_zh: tuple[str, ...]  # their labels in Chinese


ROLE_HOMES = [
    RoleHome(
        "doctor_a",
        "township_doctor",
        "城关镇卫生院",
        ("patients", "imaging", "ecg", "pathology", "consults"),
        ("患者", "影像", "心电", "病理", "会诊"),
    ),
    RoleHome(
        "tech_a",
        "technician",
        "城关镇卫生院",
        ("imagingUpload", "ecgUpload", "pathologyUpload"),
        ("影像上传", "心电上传", "病理上传"),
    ),
    RoleHome(
        "specialist",
        "specialist",
        "清河县人民医院",
        ("readingWorklist", "ecgReading", "pathologyReading", "consults"),
        ("阅片工作列表", "心电诊断", "病理诊断", "会诊"),
    ),
    RoleHome("phd_a", "public_health", "城关镇卫生院", ("followups", "patients"), ("慢病随访", "患者")),
    RoleHome("hospital_admin", "facility_admin", "清河县人民医院", ("facilityUsers", "audit"), ("机构用户", "审计")),
    RoleHome("analyst", "bureau_analyst", "清河县", ("dashboard",), ("统计看板",)),
    RoleHome(
        "admin",
        "platform_admin",
        "清河县",
        ("facilities", "users", "audit", "systemStatus"),
        ("机构", "用户", "审计", "系统状态"),
    ),
]

SERVICE_LABELS = {
    "imaging": "影像云",
    "ecg": "心电云",
    "pathology": "病理云",
    "consult": "远程会诊云",
    "health_mgmt": "健康管理云",
}


def sign_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()


def nav_keys(page) -> list[str]:
    ids = (
        page.get_by_test_id("nav")
        .locator("[data-testid^='nav-item-']")
        .evaluate_all("els => els.map(e => e.dataset.testid)")
    )
    return [i.removeprefix("nav-item-") for i in ids]


@pytest.mark.parametrize("home", ROLE_HOMES, ids=[h.username for h in ROLE_HOMES])
def test_each_role_signs_in_to_its_home(new_page, platform: Platform, home: RoleHome) -> None:
    page = new_page
    base = platform.gateway_url
    page.goto(f"{base}/")
    page.wait_for_url(re.compile(r"/login$"))  # not signed in: the app sends you to the login page
    assert page.get_by_test_id("app-title").inner_text() == "区域远程医疗云"

    # A code signs in once: take one of a step no earlier sign-in used (this may wait for the next step, so
    # before the page starts waiting for the answer).
    code = fresh_totp(home.username)
    with page.expect_response(lambda r: r.url.endswith("/auth/token") and r.status == 200) as answer:
        sign_in(page, base, home.username)
        if home.role in ("facility_admin", "platform_admin"):
            page.get_by_test_id("login-step-totp").wait_for()  # the gateway said mfa_required
            if home.role == "facility_admin":
                right = totp_for(home.username) or "0"
                page.get_by_test_id("login-totp").fill(f"{(int(right) + 500000) % 1000000:06d}")  # a wrong code
                page.get_by_test_id("login-submit").click()
                expect(page.get_by_test_id("login-error")).to_contain_text("验证码错误")
            assert code, f"{home.username} has no TOTP secret in the seed"
            page.get_by_test_id("login-totp").fill(code)
            page.get_by_test_id("login-submit").click()
    user = answer.value.json()["user"]

    page.get_by_test_id("home-greeting").wait_for()
    assert page.url == f"{base}/home"
    assert user["display_name"] in page.get_by_test_id("home-greeting").inner_text()
    assert page.get_by_test_id("home-facility").inner_text() == home.facility_zh
    assert page.get_by_test_id("topbar-facility").inner_text() == home.facility_zh

    assert nav_keys(page) == ["home", *home.areas]
    nav_text = page.get_by_test_id("nav").inner_text()
    for label in home.nav_zh:
        assert label in nav_text
    for area in home.areas:
        assert page.get_by_test_id(f"home-card-{area}").is_visible()
    placeholders = [a for a in home.areas if a not in LIVE_AREAS]
    assert page.get_by_test_id("home-cards").get_by_test_id("coming-soon").count() == len(placeholders)

    if home.role == "platform_admin":
        # the one card with real data: the gateway's /readyz, live
        summary = page.get_by_test_id("system-status-summary")
        summary.wait_for()
        assert summary.get_attribute("data-ready") == "true", page.get_by_test_id("system-status").inner_text()
        for check in ("database", "redis", "storage"):
            assert page.get_by_test_id(f"system-status-row-gateway-{check}").is_visible()
        card = page.get_by_test_id("home-card-systemStatus").inner_text()
        for service, label in SERVICE_LABELS.items():
            assert page.get_by_test_id(f"system-status-row-{service}-all").is_visible()
            assert label in card
        assert "全部服务运行正常" in summary.inner_text()

    screenshot(page, f"home-{home.username}")

    if home.role == "platform_admin":
        page.get_by_test_id("nav-item-systemStatus").click()
        page.get_by_test_id("area-page-systemStatus").get_by_test_id("system-status-summary").wait_for()
        assert page.get_by_test_id("system-status-row-health_mgmt-all").inner_text().startswith("健康管理云")
        screenshot(page, "system-status-admin")
        page.get_by_test_id("nav-item-home").click()

    # an area of the role opens its page (a plain "coming soon" until that area is built)
    first = home.areas[0]
    page.get_by_test_id(f"nav-item-{first}").click()
    page.get_by_test_id(f"area-page-{first}").wait_for()
    # and an area of another role is refused in the app too
    other = "/dashboard" if home.role != "bureau_analyst" else "/manage/users"
    page.goto(f"{base}{other}")
    page.get_by_test_id("forbidden").wait_for()


def test_wrong_password_says_so(new_page, platform: Platform) -> None:
    page = new_page
    sign_in(page, platform.gateway_url, "phd_b", "not-the-password")
    expect(page.get_by_test_id("login-error")).to_have_text("用户名或密码错误。")
    assert page.url.endswith("/login")
    assert page.get_by_test_id("login-password").is_visible()  # still on the first step
    screenshot(page, "login-wrong-password")


def test_english_switch_persists_and_sign_out_forgets(new_page, platform: Platform) -> None:
    page = new_page
    base = platform.gateway_url
    page.goto(f"{base}/login")
    assert page.get_by_test_id("login-submit").inner_text() == "登录"
    page.get_by_test_id("lang-switch").click()
    assert page.get_by_test_id("login-submit").inner_text() == "Sign in"
    assert page.get_by_test_id("app-title").inner_text() == "Regional Tele-Health Cloud"
    assert page.evaluate("document.documentElement.lang") == "en"

    sign_in(page, base, "tech_b")
    page.get_by_test_id("home-greeting").wait_for()
    assert page.get_by_test_id("home-facility").inner_text() == "Lijia Township Health Centre"
    nav = page.get_by_test_id("nav").inner_text()
    for label in ("Home", "Imaging upload", "ECG upload", "Pathology upload"):
        assert label in nav
    assert "影像上传" not in nav
    assert page.get_by_test_id("home-cards").get_by_test_id("coming-soon").first.inner_text() == "Coming soon"
    screenshot(page, "home-tech_b-en")

    # a reload keeps the language (localStorage) and the session (refresh token in sessionStorage)
    with page.expect_response(lambda r: r.url.endswith("/auth/token") and r.status == 200):
        page.reload()
    page.get_by_test_id("home-greeting").wait_for()
    assert "Imaging upload" in page.get_by_test_id("nav").inner_text()

    # and back to Chinese
    page.get_by_test_id("lang-switch").click()
    assert "影像上传" in page.get_by_test_id("nav").inner_text()
    page.get_by_test_id("lang-switch").click()

    with page.expect_response(lambda r: r.url.endswith("/auth/logout")) as bye:
        page.get_by_test_id("logout").click()
    assert bye.value.status == 204
    page.get_by_test_id("login-form").wait_for()
    assert page.evaluate("window.sessionStorage.getItem('th.refresh')") is None
    assert page.get_by_test_id("login-submit").inner_text() == "Sign in"  # still English
    page.goto(f"{base}/home")
    page.wait_for_url(re.compile(r"/login$"))  # signed out means signed out


@pytest.fixture
def strict_gateway(platform: Platform) -> Iterator[str]:
    """A second, real gateway on the same platform whose login limit is 6 per window, counted under its own
    Redis keys so the session's shared gateway is not throttled by this test."""
    from infra.local.stack import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **platform.env,
        "GATEWAY_RATE_LOGIN_LIMIT": "6",
        "GATEWAY_RATE_KEY_PREFIX": f"rl-browser-{secrets.token_hex(4)}",
    }
    log_dir = Path(platform.log_dir)
    log = (log_dir / "gateway-strict.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "gateway.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(url, proc, "gateway-strict", log_dir)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_locked_account_and_rate_limit_say_so(new_page, strict_gateway: str) -> None:
    page = new_page
    error = page.get_by_test_id("login-error")
    # a name with no account locks like a real one after 5 failures (the gateway does not reveal which)
    page.goto(f"{strict_gateway}/login")
    page.get_by_test_id("login-username").fill(f"nobody.{secrets.token_hex(4)}")
    for attempt in range(1, 6):
        page.get_by_test_id("login-password").fill(f"wrong-{attempt}")
        with page.expect_response(lambda r: r.url.endswith("/auth/token")) as answer:
            page.get_by_test_id("login-submit").click()
        if attempt < 5:
            assert answer.value.status == 401
            expect(error).to_have_text("用户名或密码错误。")
    assert answer.value.status == 423
    expect(error).to_have_text(re.compile(r"^账号已被锁定，请于 \d{2}:\d{2} 后再试"))
    screenshot(page, "login-locked")

    # the 7th attempt from this address in the window: the gateway's login limit answers 429
    for expected in (423, 429):
        with page.expect_response(lambda r: r.url.endswith("/auth/token")) as answer:
            page.get_by_test_id("login-submit").click()
        assert answer.value.status == expected
    expect(error).to_have_text(re.compile(r"^尝试过于频繁，请在 \d+ 秒后再试。$"))


def test_unknown_page_and_direct_link_after_sign_in(new_page, platform: Platform) -> None:
    page = new_page
    base = platform.gateway_url
    page.goto(f"{base}/ecg/reading")  # a deep link while signed out
    page.wait_for_url(re.compile(r"/login$"))
    sign_in_here = page.get_by_test_id("login-username")
    sign_in_here.fill("specialist_city")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("area-page-ecgReading").wait_for()  # back where the link pointed
    assert page.url == f"{base}/ecg/reading"
    page.goto(f"{base}/no/such/page")
    page.get_by_test_id("not-found").wait_for()
