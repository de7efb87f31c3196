"""The admin pages in a real browser, through the real gateway (机构 / 用户 / 机构用户 / 审计).

1. The platform admin sees the facility tree (region → hospital → township → village) with its kind
   badges and reading centres; adding a facility with a malformed or taken code shows the API's 422 / 409
   next to the code field; a township under the county hospital is created (its reading centre the county
   hospital), edited (a taken code: 409 again; names; reading centre cleared and restored), deactivated
   and reactivated. A township doctor is created there, found in the user list and deactivated. A facility
   admin created there gets its authenticator QR code once (drawn in the page; it decodes to the
   otpauth URI) and signs in with a code from it. Along the way: a role that needs an authenticator is
   refused at the roles (422), roles change, and a reset password (shown once) signs the doctor in.
2. The county hospital's facility admin sees only their subtree: its users and facilities, not the city
   hospital's nor the region's; their own facility cannot be deactivated; they cannot grant platform roles;
   the audit page shows only their subtree's rows and has no chain verification.
3. The audit page lists the admin's sign-in and actions with colour-coded outcomes, pages with before_seq,
   verifies the hash chain (intact) and exports a FHIR AuditEvent Bundle; a broken chain's report (the
   verifier's answer replayed into the page) reads in red with the first bad row and its problem.

Each admin signs in once per module, with a TOTP code of a step the gateway has not yet accepted (it
refuses a replayed code: tests/conftest.py fresh_totp / fresh_code).
Screenshots go to /tmp/th-browser/ (TH_SCREENSHOT_DIR).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import screenshot, shot
from tests.conftest import Platform, fresh_code, fresh_totp, last_totp_step

pytestmark = pytest.mark.browser

PASSWORD = "Demo@2026"
COUNTY_HOSPITAL = "清河县人民医院"
RUN = secrets.token_hex(3).upper()  # unique names per run: the session's database is shared


@dataclass
class Made:
    """What test 1 created, for the tests after it."""

    township_code: str = f"QH-T{RUN}"
    township_zh: str = f"测试镇卫生院{RUN}"
    township_id: str = ""
    doctor: str = f"doc.{RUN.lower()}"
    doctor_name: str = f"测试医生{RUN}"
    facility_admin: str = f"fadm.{RUN.lower()}"
    done: set[str] = field(default_factory=set)


MADE = Made()


# -- signing in -----------------------------------------------------------------------------------------


def sign_in(page: Page, platform: Platform, username: str, secret: str | None = None, password: str = PASSWORD) -> None:
    """Sign in through the login page; an account with a second factor gets a code the gateway has not
    accepted yet (the harness's fresh_totp / fresh_code: a code signs in once)."""
    page.goto(f"{platform.gateway_url}/login")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    code = fresh_code(secret, last_accepted=last_totp_step(username)) if secret else fresh_totp(username)
    if code:
        page.get_by_test_id("login-step-totp").wait_for()
        page.get_by_test_id("login-totp").fill(code)
        page.get_by_test_id("login-submit").click()
    page.get_by_test_id("home-greeting").wait_for()


def _context(browser: Browser) -> BrowserContext:
    context = browser.new_context(
        viewport={"width": 1366, "height": 768}, locale="zh-CN", timezone_id="Asia/Shanghai", accept_downloads=True
    )
    context.set_default_timeout(15_000)
    return context


@pytest.fixture(scope="module")
def admin_page(chromium: object, web_dist: Path, platform: Platform) -> Iterator[Page]:
    """The platform admin, signed in once for the module."""
    assert isinstance(chromium, Browser)
    context = _context(chromium)
    page = context.new_page()
    sign_in(page, platform, "admin")
    try:
        yield page
    finally:
        context.close()


def row_of(page: Page, code: str):  # type: ignore[no-untyped-def]
    return page.locator(f"[data-testid='facility-row'][data-code='{code}']")


def tree_rows(page: Page) -> list[dict[str, str]]:
    return page.get_by_test_id("facility-row").evaluate_all(
        """els => els.map(e => ({code: e.dataset.code, kind: e.dataset.kind, depth: e.dataset.depth,
             name: e.querySelector('[data-testid=facility-name]').textContent,
             centre: (e.querySelector('[data-testid=facility-reading-centre]') || {}).textContent || ''}))"""
    )


def search_audit(page: Page) -> None:
    """Press 查询 and wait until the table shows that search's answer."""
    with page.expect_response(lambda r: "/api/audit/events" in r.url):
        page.get_by_test_id("audit-search").click()
    page.locator("[data-testid='audit-table'][aria-busy='false'], [data-testid='empty-state']").first.wait_for()


def posted(path: str):  # type: ignore[no-untyped-def]
    """A predicate for page.expect_response: the answer to a POST of ``path``."""
    return lambda r: r.url.endswith(path) and r.request.method == "POST"


def user_rows(page: Page) -> list[str]:
    return page.get_by_test_id("user-row").evaluate_all("els => els.map(e => e.dataset.username)")


# -- 1. facilities and users ----------------------------------------------------------------------------


def test_admin_builds_a_township_and_its_users(admin_page: Page, platform: Platform, chromium: object) -> None:
    page = admin_page
    page.get_by_test_id("nav-item-facilities").click()
    page.get_by_test_id("area-page-facilities").wait_for()
    page.get_by_test_id("facility-tree").wait_for()
    expect(page.get_by_test_id("coming-soon")).to_have_count(0)

    rows = {r["code"]: r for r in tree_rows(page)}
    assert rows["QH"]["depth"] == "0" and rows["QH"]["kind"] == "region" and rows["QH"]["name"] == "清河县"
    assert rows["QH-COUNTY"]["depth"] == "1" and rows["QH-COUNTY"]["kind"] == "hospital"
    assert rows["QH-CITY1"]["depth"] == "1"
    assert rows["QH-CG"]["depth"] == "2" and rows["QH-CG"]["kind"] == "township"
    assert rows["QH-CG-DC"]["depth"] == "3" and rows["QH-CG-DC"]["kind"] == "village"
    for township in ("QH-CG", "QH-LJ", "QH-WZ"):
        assert rows[township]["centre"] == f"阅片中心：{COUNTY_HOSPITAL}"
    county = row_of(page, "QH-COUNTY")
    expect(county.get_by_test_id("facility-kind")).to_have_text("医院")
    expect(county.get_by_test_id("facility-level")).to_have_text("县级")
    expect(county.get_by_test_id("facility-serves")).to_have_text(re.compile(r"^为 \d+ 家机构阅片$"))
    # the village clinic reads through its township's centre
    village = row_of(page, "QH-CG-DC").get_by_test_id("facility-reading-centre-inherited")
    expect(village).to_contain_text(COUNTY_HOSPITAL)
    screenshot(page, "admin-facilities")

    # add a township under the county hospital: the API's 422 and 409 show next to the code field
    county.get_by_test_id("facility-add-child").click()
    dialog = page.get_by_test_id("facility-dialog")
    expect(dialog.get_by_test_id("facility-form-parent")).to_contain_text(COUNTY_HOSPITAL)
    expect(dialog.get_by_test_id("facility-kind-select")).to_have_value("township")
    county_id = county.get_attribute("data-id")
    expect(dialog.get_by_test_id("facility-reading-centre-select")).to_have_value(county_id or "")
    dialog.get_by_test_id("facility-name-zh").fill(MADE.township_zh)
    dialog.get_by_test_id("facility-name-en").fill(f"Test Township Health Centre {RUN}")
    dialog.get_by_test_id("facility-code").fill("!")
    with page.expect_response(posted("/api/admin/facilities")) as answer:
        dialog.get_by_test_id("facility-submit").click()
    assert answer.value.status == 422
    expect(dialog.get_by_test_id("field-error-code")).to_contain_text("大写字母、数字")
    dialog.get_by_test_id("facility-code").fill("QH-CG")
    with page.expect_response(posted("/api/admin/facilities")) as answer:
        dialog.get_by_test_id("facility-submit").click()
    assert answer.value.status == 409
    expect(dialog.get_by_test_id("field-error-code")).to_have_text("机构编码 QH-CG 已被使用")
    expect(dialog.get_by_test_id("field-error-name_zh")).to_have_count(0)
    shot(dialog, "admin-facility-dialog-409")

    dialog.get_by_test_id("facility-code").fill(MADE.township_code.lower())  # upper-cased as typed
    expect(dialog.get_by_test_id("facility-code")).to_have_value(MADE.township_code)
    with page.expect_response(posted("/api/admin/facilities")) as answer:
        dialog.get_by_test_id("facility-submit").click()
    assert answer.value.status == 201, answer.value.text()
    created = answer.value.json()
    MADE.township_id = created["id"]
    assert created["reading_centre_id"] == county_id and created["kind"] == "township"
    expect(dialog).to_have_count(0)
    expect(page.get_by_test_id("admin-notice")).to_contain_text(MADE.township_zh)
    new_row = row_of(page, MADE.township_code)
    expect(new_row).to_have_attribute("data-depth", "2")
    expect(new_row.get_by_test_id("facility-reading-centre")).to_have_text(f"阅片中心：{COUNTY_HOSPITAL}")
    expect(new_row.get_by_test_id("facility-level")).to_have_text("乡镇级")
    # it sits under the county hospital, not the city one
    codes = [r["code"] for r in tree_rows(page)]
    assert codes.index("QH-COUNTY") < codes.index(MADE.township_code) and "QH-CITY1" in codes
    screenshot(page, "admin-facilities-created")

    # edit it: a taken code answers 409 next to the field; names and the reading centre change
    new_row.get_by_test_id("facility-edit").click()
    dialog = page.get_by_test_id("facility-dialog")
    expect(dialog.get_by_test_id("facility-name-zh")).to_have_value(MADE.township_zh)
    dialog.get_by_test_id("facility-code").fill("QH-LJ")
    with page.expect_response(lambda r: "/api/admin/facilities/" in r.url and r.request.method == "PATCH") as answer:
        dialog.get_by_test_id("facility-submit").click()
    assert answer.value.status == 409
    expect(dialog.get_by_test_id("field-error-code")).to_have_text("机构编码 QH-LJ 已被使用")
    dialog.get_by_test_id("facility-code").fill(MADE.township_code)
    dialog.get_by_test_id("facility-name-en").fill(f"Test Township {RUN}")
    dialog.get_by_test_id("facility-reading-centre-select").select_option("")
    with page.expect_response(lambda r: "/api/admin/facilities/" in r.url and r.request.method == "PATCH") as answer:
        dialog.get_by_test_id("facility-submit").click()
    assert answer.value.status == 200, answer.value.text()
    assert answer.value.json()["reading_centre_id"] is None
    expect(dialog).to_have_count(0)
    expect(new_row.get_by_test_id("facility-reading-centre")).to_have_count(0)
    expect(new_row).to_contain_text(f"Test Township {RUN}")
    new_row.get_by_test_id("facility-edit").click()
    page.get_by_test_id("facility-reading-centre-select").select_option(county_id or "")
    page.get_by_test_id("facility-submit").click()
    expect(new_row.get_by_test_id("facility-reading-centre")).to_have_text(f"阅片中心：{COUNTY_HOSPITAL}")

    # deactivate it (behind a confirmation) and bring it back
    new_row.get_by_test_id("facility-deactivate").click()
    confirm = page.get_by_test_id("facility-deactivate-dialog")
    expect(confirm).to_contain_text(MADE.township_zh)
    confirm.get_by_test_id("facility-deactivate-confirm").click()
    expect(new_row).to_have_attribute("data-active", "false")
    expect(new_row.get_by_test_id("facility-inactive")).to_have_text("已停用")
    expect(new_row.get_by_test_id("facility-add-child")).to_have_count(0)
    shot(page.get_by_test_id("facility-tree"), "admin-facility-deactivated")
    new_row.get_by_test_id("facility-reactivate").click()
    expect(new_row).to_have_attribute("data-active", "true")

    # users: create a township doctor there, find them, deactivate them
    page.get_by_test_id("nav-item-users").click()
    page.get_by_test_id("area-page-users").wait_for()
    page.get_by_test_id("users-table").wait_for()
    assert {"admin", "doctor_a", "specialist_city"} <= set(user_rows(page))
    screenshot(page, "admin-users")

    page.get_by_test_id("user-new").click()
    form = page.get_by_test_id("user-create-dialog")
    form.get_by_test_id("user-username").fill(MADE.doctor)
    form.get_by_test_id("user-display-name").fill(MADE.doctor_name)
    form.get_by_test_id("user-facility").select_option(MADE.township_id)
    form.get_by_test_id("user-role-township_doctor").check()
    form.get_by_test_id("user-password").fill("short")
    with page.expect_response(posted("/api/admin/users")) as answer:
        form.get_by_test_id("user-create-submit").click()
    assert answer.value.status == 422
    expect(form.get_by_test_id("field-error-password")).to_have_text("密码至少 8 位")
    form.get_by_test_id("user-password-generate").click()
    password = form.get_by_test_id("user-password").input_value()
    assert len(password) >= 12
    with page.expect_response(posted("/api/admin/users")) as answer:
        form.get_by_test_id("user-create-submit").click()
    assert answer.value.status == 201, answer.value.text()
    assert answer.value.json()["totp"] is None  # a clinician has no authenticator
    done = page.get_by_test_id("user-created-dialog")
    expect(done.get_by_test_id("user-created-username")).to_have_text(MADE.doctor)
    expect(done.get_by_test_id("user-created-password")).to_have_text(password)
    expect(done.get_by_test_id("totp-enrolment")).to_have_count(0)
    done.get_by_test_id("user-created-done").click()

    page.get_by_test_id("users-search").fill(MADE.doctor)
    row = page.locator(f"[data-testid='user-row'][data-username='{MADE.doctor}']")
    expect(row).to_have_count(1)
    expect(page.get_by_test_id("user-row")).to_have_count(1)
    expect(row).to_have_attribute("data-active", "true")
    expect(row.get_by_test_id("user-facility-name")).to_have_text(MADE.township_zh)
    expect(row).to_contain_text("乡镇医生")
    # and the facility filter finds them under the county hospital's subtree
    page.get_by_test_id("users-search").fill("")
    page.get_by_test_id("users-filter-facility").select_option(county_id or "")
    expect(page.locator(f"[data-testid='user-row'][data-username='{MADE.doctor}']")).to_have_count(1)
    expect(page.locator("[data-testid='user-row'][data-username='admin']")).to_have_count(0)
    page.get_by_test_id("users-filter-facility").select_option("")
    page.get_by_test_id("users-search").fill(MADE.doctor)
    expect(page.get_by_test_id("user-row")).to_have_count(1)

    row.get_by_test_id("user-manage").click()
    manage = page.get_by_test_id("user-dialog")
    expect(manage.get_by_test_id("user-dialog-username")).to_have_text(MADE.doctor)
    expect(manage.get_by_test_id("user-unlock")).to_be_disabled()  # not locked
    # an administrator role needs an authenticator first: the API's 422 shows at the roles
    manage.get_by_test_id("user-role-facility_admin").check()
    with page.expect_response(lambda r: "/api/admin/users/" in r.url and r.request.method == "PATCH") as answer:
        manage.get_by_test_id("user-save").click()
    assert answer.value.status == 422
    expect(manage.get_by_test_id("field-error-roles")).to_have_text(re.compile(r"^管理员角色需要先绑定身份验证器"))
    manage.get_by_test_id("user-role-facility_admin").uncheck()
    manage.get_by_test_id("user-role-technician").check()
    with page.expect_response(lambda r: "/api/admin/users/" in r.url and r.request.method == "PATCH") as answer:
        manage.get_by_test_id("user-save").click()
    assert answer.value.status == 200 and answer.value.json()["roles"] == ["technician", "township_doctor"]
    expect(manage.get_by_test_id("user-save-note")).to_have_text("已保存修改")
    expect(row).to_contain_text("技师")
    # reset the password: the admin sets a temporary one (a generated one offered), shown once; it works
    manage.get_by_test_id("user-reset-password").click()
    manage.get_by_test_id("user-reset-password-input").fill("abc")
    manage.get_by_test_id("user-reset-submit").click()
    expect(manage.get_by_test_id("field-error-password")).to_have_text("密码至少 8 位")
    manage.get_by_test_id("user-reset-generate").click()
    temporary = manage.get_by_test_id("user-reset-password-input").input_value()
    with page.expect_response(lambda r: r.url.endswith("/password")) as answer:
        manage.get_by_test_id("user-reset-submit").click()
    assert answer.value.status == 200
    expect(manage.get_by_test_id("user-new-password")).to_have_text(temporary)
    shot(manage, "admin-user-password-reset")
    assert isinstance(chromium, Browser)
    context = _context(chromium)
    try:
        doctor = context.new_page()
        sign_in(doctor, platform, MADE.doctor, password=temporary)
        expect(doctor.get_by_test_id("home-facility")).to_have_text(MADE.township_zh)
    finally:
        context.close()

    manage.get_by_test_id("user-deactivate").click()
    with page.expect_response(lambda r: r.url.endswith("/deactivate")) as answer:
        manage.get_by_test_id("user-deactivate-confirm").click()
    assert answer.value.status == 200 and answer.value.json()["active"] is False
    expect(manage.get_by_test_id("user-action-note")).to_contain_text("已停用")
    expect(manage.get_by_test_id("user-inactive")).to_be_visible()
    expect(manage.get_by_test_id("user-reactivate")).to_be_visible()
    shot(manage, "admin-user-deactivated")
    manage.get_by_test_id("user-dialog-close").click()
    expect(row).to_have_attribute("data-active", "false")
    page.get_by_test_id("users-filter-active").select_option("false")
    expect(row).to_have_count(1)
    page.get_by_test_id("users-filter-active").select_option("true")
    expect(row).to_have_count(0)
    page.get_by_test_id("users-filter-active").select_option("")
    screenshot(page, "admin-users-deactivated")

    # a facility admin: the authenticator's QR code and secret, shown once, and they work
    page.get_by_test_id("users-search").fill("")
    page.get_by_test_id("user-new").click()
    form = page.get_by_test_id("user-create-dialog")
    form.get_by_test_id("user-username").fill(MADE.facility_admin)
    form.get_by_test_id("user-display-name").fill(f"测试管理员{RUN}")
    form.get_by_test_id("user-facility").select_option(MADE.township_id)
    form.get_by_test_id("user-role-facility_admin").check()
    form.get_by_test_id("user-password-generate").click()
    admin_password = form.get_by_test_id("user-password").input_value()
    with page.expect_response(posted("/api/admin/users")) as answer:
        form.get_by_test_id("user-create-submit").click()
    assert answer.value.status == 201, answer.value.text()
    enrolment = answer.value.json()["totp"]
    done = page.get_by_test_id("user-created-dialog")
    qr = done.get_by_test_id("totp-qr")
    expect(qr).to_be_visible()
    secret = done.get_by_test_id("totp-secret").get_attribute("data-secret")
    assert secret == enrolment["secret"]
    expect(done.get_by_test_id("totp-uri")).to_have_text(enrolment["otpauth_uri"])
    qr_png = shot(qr, "admin-totp-qr")
    shot(done, "admin-user-created-totp")
    if shutil.which("zbarimg"):  # the QR code is drawn by the page itself: it must decode to the URI
        decoded = subprocess.run(["zbarimg", "-q", "--raw", str(qr_png)], capture_output=True, text=True)
        assert decoded.stdout.strip() == enrolment["otpauth_uri"], decoded.stdout
    done.get_by_test_id("user-created-done").click()
    expect(done).to_have_count(0)

    context = _context(chromium)
    try:
        fresh = context.new_page()
        sign_in(fresh, platform, MADE.facility_admin, secret, password=admin_password)
        expect(fresh.get_by_test_id("home-facility")).to_have_text(MADE.township_zh)
        assert fresh.get_by_test_id("nav-item-facilityUsers").is_visible()
    finally:
        context.close()
    MADE.done.add("facilities")


# -- 2. a facility admin's subtree ------------------------------------------------------------------------


def test_facility_admin_sees_only_their_subtree(chromium: object, web_dist: Path, platform: Platform) -> None:
    assert isinstance(chromium, Browser)
    context = _context(chromium)
    page = context.new_page()
    try:
        sign_in(page, platform, "hospital_admin")
        page.get_by_test_id("nav-item-facilityUsers").click()
        page.get_by_test_id("area-page-facilityUsers").wait_for()
        page.get_by_test_id("users-table").wait_for()
        users = set(user_rows(page))
        assert {"hospital_admin", "specialist", "doctor_a", "doctor_b", "tech_a", "phd_b"} <= users
        assert not users & {"admin", "analyst", "specialist_city"}
        if "facilities" in MADE.done:
            assert {MADE.doctor, MADE.facility_admin} <= users
        # a facility admin grants clinical roles and facility admin only
        page.get_by_test_id("user-new").click()
        dialog = page.get_by_test_id("user-create-dialog")
        expect(dialog.get_by_test_id("user-role-township_doctor")).to_be_enabled()
        expect(dialog.get_by_test_id("user-role-facility_admin")).to_be_enabled()
        expect(dialog.get_by_test_id("user-role-platform_admin")).to_have_count(0)
        expect(dialog.get_by_test_id("user-role-bureau_analyst")).to_have_count(0)
        facilities = (
            dialog.get_by_test_id("user-facility")
            .locator("option")
            .evaluate_all("els => els.map(e => e.dataset.code).filter(Boolean)")
        )
        assert "QH-COUNTY" in facilities and "QH-CG-DC" in facilities
        assert "QH" not in facilities and "QH-CITY1" not in facilities
        page.keyboard.press("Escape")
        expect(dialog).to_have_count(0)
        screenshot(page, "facility-admin-users")

        page.get_by_test_id("facility-users-tab-facilities").click()
        page.get_by_test_id("facility-tree").wait_for()
        rows = tree_rows(page)
        assert rows[0]["code"] == "QH-COUNTY" and rows[0]["depth"] == "0"
        codes = {r["code"] for r in rows}
        assert {"QH-COUNTY", "QH-CG", "QH-CG-DC", "QH-LJ", "QH-WZ"} <= codes
        assert not codes & {"QH", "QH-CITY1"}
        if "facilities" in MADE.done:
            assert MADE.township_code in codes
        own = row_of(page, "QH-COUNTY")
        expect(own.get_by_test_id("facility-deactivate")).to_have_count(0)  # not their own facility
        expect(own.get_by_test_id("facility-edit")).to_be_visible()
        expect(row_of(page, "QH-LJ").get_by_test_id("facility-deactivate")).to_be_visible()
        expect(page.get_by_test_id("facility-new-root")).to_have_count(0)
        screenshot(page, "facility-admin-facilities")

        # their audit view: their subtree's rows only, no chain verification (platform admins only)
        page.get_by_test_id("nav-item-audit").click()
        page.get_by_test_id("audit-table").wait_for()
        expect(page.get_by_test_id("audit-verify")).to_have_count(0)
        actors = set(page.get_by_test_id("audit-row").evaluate_all("els => els.map(e => e.dataset.actor)"))
        assert "hospital_admin" in actors
        assert "admin" not in actors and "specialist_city" not in actors
        screenshot(page, "facility-admin-audit")
    finally:
        context.close()


# -- 3. audit ---------------------------------------------------------------------------------------------


def test_audit_lists_sign_in_and_admin_actions_and_verifies(admin_page: Page, platform: Platform) -> None:
    page = admin_page
    page.get_by_test_id("nav-item-audit").click()
    page.get_by_test_id("area-page-audit").wait_for()
    page.get_by_test_id("audit-table").wait_for()

    # the admin's own rows: the sign-in and every administrative action, newest first
    page.get_by_test_id("audit-actor").fill("admin")
    search_audit(page)
    expect(page.locator("[data-testid='audit-row'][data-action='auth.login']").first).to_be_visible()
    login = page.locator("[data-testid='audit-row'][data-action='auth.login'][data-outcome='success']").first
    expect(login.get_by_test_id("audit-action-label")).to_have_text("登录")
    expect(login.get_by_test_id("audit-outcome-badge")).to_contain_text("成功")
    actors = set(page.get_by_test_id("audit-row").evaluate_all("els => els.map(e => e.dataset.actor)"))
    assert actors == {"admin"}
    seqs = page.get_by_test_id("audit-row").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    assert seqs == sorted(seqs, reverse=True)

    page.get_by_test_id("audit-action").fill("admin.")
    search_audit(page)
    expect(page.locator("[data-testid='audit-row'][data-action='admin.user.deactivate']")).to_have_count(1)
    actions = set(page.get_by_test_id("audit-row").evaluate_all("els => els.map(e => e.dataset.action)"))
    if "facilities" in MADE.done:
        assert {"admin.facility.create", "admin.user.create", "admin.user.deactivate"} <= actions
    assert all(a.startswith("admin.") for a in actions)
    row = page.locator("[data-testid='audit-row'][data-action='admin.user.deactivate']").first
    row.click()
    expect(page.get_by_test_id("audit-row-detail")).to_contain_text('"fields"')
    screenshot(page, "admin-audit-admin-actions")

    # the refused requests are there too, in colour: the 409 of the duplicate facility code
    page.get_by_test_id("audit-action").fill("POST /api/admin/facilities")
    page.get_by_test_id("audit-outcome").select_option("failure")
    search_audit(page)
    failed = page.locator("[data-testid='audit-row'][data-outcome='failure']").first
    expect(failed.get_by_test_id("audit-outcome-badge")).to_have_text(re.compile(r"^失败 · (409|422)$"))
    page.get_by_test_id("audit-reset").click()
    expect(page.get_by_test_id("audit-actor")).to_have_value("")

    # paging with before_seq: the older page starts below the newest one (this module alone writes > 20 rows)
    with page.expect_response(lambda r: "/api/audit/events" in r.url and "limit=20" in r.url):
        page.get_by_test_id("audit-page-size").select_option("20")
    expect(page.get_by_test_id("audit-row")).to_have_count(20)
    first_page = page.get_by_test_id("audit-row").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    with page.expect_response(lambda r: "/api/audit/events" in r.url and f"before_seq={min(first_page)}" in r.url):
        page.get_by_test_id("audit-older").click()
    expect(page.get_by_test_id("audit-newer")).to_be_enabled()
    page.wait_for_function(
        "min => Number(document.querySelector('[data-testid=audit-row]').dataset.seq) < min", arg=min(first_page)
    )
    page.get_by_test_id("audit-newer").click()
    page.wait_for_function(
        "top => Number(document.querySelector('[data-testid=audit-row]').dataset.seq) >= top", arg=max(first_page)
    )

    # a time range in Beijing time: today's rows
    page.get_by_test_id("audit-preset-today").click()
    expect(page.get_by_test_id("audit-since")).to_have_value(re.compile(r"^\d{4}-\d{2}-\d{2}T00:00$"))
    expect(page.get_by_test_id("audit-row").first).to_be_visible()

    # verify the chain
    with page.expect_response(lambda r: r.url.endswith("/api/audit/verify")) as answer:
        page.get_by_test_id("audit-verify").click()
    assert answer.value.status == 200 and answer.value.json()["ok"] is True
    result = page.get_by_test_id("audit-verify-result")
    expect(result).to_have_attribute("data-ok", "true")
    expect(result).to_contain_text("审计链完整")
    assert int(result.get_attribute("data-checked") or 0) > 0
    screenshot(page, "admin-audit-verified")

    # export the matching rows as FHIR AuditEvents
    with page.expect_download() as download_info:
        page.get_by_test_id("audit-export").click()
    download = download_info.value
    assert re.fullmatch(r"audit-events-\d{12}\.fhir\.json", download.suggested_filename)
    bundle = json.loads(Path(download.path()).read_text())
    assert bundle["resourceType"] == "Bundle" and bundle["entry"]
    assert all(e["resource"]["resourceType"] == "AuditEvent" for e in bundle["entry"])
    expect(page.get_by_test_id("audit-export-note")).to_contain_text("已导出")

    # nothing found: the empty state
    page.get_by_test_id("audit-actor").fill("no.such.user")
    search_audit(page)
    expect(page.get_by_test_id("empty-state")).to_contain_text("没有符合条件的审计记录")
    page.get_by_test_id("audit-actor").fill("")
    search_audit(page)
    expect(page.get_by_test_id("audit-row").first).to_be_visible()

    # how a broken chain would read: the verifier's answer for a tampered row, replayed into the page (the
    # session's real chain must stay intact for everyone else; breaking it is the audit API tests' business)
    broken = {
        "ok": False,
        "checked": 41,
        "first_bad_seq": 42,
        "problem": "row content does not match its hash",
        "verified_at": "2026-03-01T06:00:00Z",
    }
    page.route("**/api/audit/verify", lambda route: route.fulfill(json=broken))
    try:
        page.get_by_test_id("audit-verify").click()
        result = page.get_by_test_id("audit-verify-result")
        expect(result).to_have_attribute("data-ok", "false")
        expect(result).to_contain_text("审计链异常：第 42 条记录")
        expect(page.get_by_test_id("audit-verify-problem")).to_contain_text("记录内容与其哈希值不符")
        assert result.evaluate("e => getComputedStyle(e).color") == "rgb(179, 38, 30)"  # --danger
        shot(result, "admin-audit-verify-broken")
    finally:
        page.unroute("**/api/audit/verify")

    # in English
    page.get_by_test_id("lang-switch").click()
    expect(page.get_by_test_id("audit-verify")).to_have_text(re.compile("Verify chain"))
    screenshot(page, "admin-audit-en")
    page.get_by_test_id("nav-item-facilities").click()
    expect(row_of(page, "QH-COUNTY").get_by_test_id("facility-kind")).to_have_text("Hospital")
    expect(row_of(page, "QH-CG").get_by_test_id("facility-reading-centre")).to_have_text(
        "Reading centre: Qinghe County People's Hospital"
    )
    screenshot(page, "admin-facilities-en")
    page.get_by_test_id("nav-item-users").click()
    page.get_by_test_id("users-table").wait_for()
    screenshot(page, "admin-users-en")
    page.get_by_test_id("lang-switch").click()
    expect(page.get_by_test_id("nav-item-users")).to_have_text("用户")
