"""The demo region: exactly the brief's tree and accounts, idempotent, with sealed TOTP secrets."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pyotp

from gateway.identity import facility_repository as facilities
from gateway.identity.mfa import totp_seal
from gateway.identity.seed import (
    COUNTY_HOSPITAL,
    DEMO_ACCOUNTS,
    DEMO_FACILITIES,
    REGION,
    demo_facility,
    seed_demo_region,
)

SNAPSHOT = """
SELECT (SELECT count(*) FROM gateway.facilities) AS facilities, (SELECT count(*) FROM gateway.users) AS users,
       (SELECT count(*) FROM audit.events WHERE action = 'seed.demo_region') AS seed_rows,
       (SELECT string_agg(id::text || updated_at::text, ',' ORDER BY id) FROM gateway.facilities) AS f,
       (SELECT string_agg(id::text || password_hash, ',' ORDER BY id) FROM gateway.users) AS u
"""


async def test_second_seed_changes_nothing(seeded: Any, admin_db: Any) -> None:
    async with admin_db.transaction() as conn:
        before = dict(await conn.fetchrow(SNAPSHOT))
        assert await seed_demo_region(conn) is False
        assert await seed_demo_region(conn) is False
        after = dict(await conn.fetchrow(SNAPSHOT))
    assert before == after


async def test_the_tree_and_accounts_are_the_briefs(seeded: Any, admin_db: Any) -> None:
    async with admin_db.transaction() as conn:
        rows = {
            r["code"]: r
            for r in await conn.fetch(
                "SELECT f.code, f.kind, f.level, f.name_zh, p.code AS parent, rc.code AS reading_centre"
                " FROM gateway.facilities f LEFT JOIN gateway.facilities p ON p.id = f.parent_id"
                " LEFT JOIN gateway.facilities rc ON rc.id = f.reading_centre_id"
                " WHERE f.code = ANY($1::text[])",
                [f.code for f in DEMO_FACILITIES],
            )
        }
        assert {c: (r["kind"], r["parent"], r["name_zh"]) for c, r in rows.items()} == {
            "QH": ("region", None, "清河县"),
            "QH-CITY1": ("hospital", "QH", "市第一人民医院"),
            "QH-COUNTY": ("hospital", "QH", "清河县人民医院"),
            "QH-CG": ("township", "QH-COUNTY", "城关镇卫生院"),
            "QH-CG-DC": ("village", "QH-CG", "城关镇东村卫生室"),
            "QH-LJ": ("township", "QH-COUNTY", "李家镇卫生院"),
            "QH-WZ": ("township", "QH-COUNTY", "王庄乡卫生院"),
        }
        assert rows["QH-CITY1"]["level"] == "tertiary" and rows["QH-COUNTY"]["level"] == "county"
        assert {c for c, r in rows.items() if r["reading_centre"] == COUNTY_HOSPITAL} == {"QH-CG", "QH-LJ", "QH-WZ"}

        served = set(await facilities.serves(conn, demo_facility(COUNTY_HOSPITAL).id))
        demo_ids = {demo_facility(f.code).id for f in DEMO_FACILITIES}  # other tests add facilities of their own
        assert served & demo_ids == {demo_facility(c).id for c in ("QH-CG", "QH-CG-DC", "QH-LJ", "QH-WZ")}
        assert await facilities.region_of(conn, demo_facility("QH-CG-DC").id) == demo_facility(REGION).id

        users = {
            r["username"]: r
            for r in await conn.fetch(
                "SELECT u.id, u.username, u.roles, f.code, u.totp_secret, u.password_hash FROM gateway.users u"
                " JOIN gateway.facilities f ON f.id = u.facility_id WHERE u.username = ANY($1::text[])",
                [a.username for a in DEMO_ACCOUNTS],
            )
        }
    assert len(users) == 11
    for account in DEMO_ACCOUNTS:
        row = users[account.username]
        assert row["id"] == account.id and list(row["roles"]) == [account.role]
        assert row["code"] == account.facility_code
        assert row["password_hash"].startswith("$argon2id$")
        if account.totp_secret:
            sealed = bytes(row["totp_secret"])
            assert account.totp_secret.encode() not in sealed  # encrypted at rest
            assert totp_seal().open(account.id, sealed) == account.totp_secret
        else:
            assert row["totp_secret"] is None
    assert {a.username for a in DEMO_ACCOUNTS if a.totp_secret} == {"hospital_admin", "admin"}


def test_otp_command_prints_current_codes() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.identity.otp", "admin"], capture_output=True, text=True, check=True
    ).stdout
    name, code = out.split()[:2]
    secret = next(a.totp_secret for a in DEMO_ACCOUNTS if a.username == "admin")
    assert name == "admin" and pyotp.TOTP(secret).verify(code, valid_window=1)
