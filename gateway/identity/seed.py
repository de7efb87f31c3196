"""The demo region: 清河县 with two hospitals, three township centres and a village clinic, and one account
per role. For development and tests only (refused when ``TH_ENV=production``).

``python -m gateway.identity.seed`` seeds the database of ``DATABASE_URL``; ``seed_demo_region(conn)`` is
idempotent: it adds what is missing and never changes what exists (a second call returns False).
Facility and user ids are stable (uuid5 of the code / username), so every machine gets the same ones.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from common.auth import Role
from common.config import platform_settings
from gateway.identity import facility_repository as facilities
from gateway.identity import repository as repo
from gateway.identity.mfa import totp_seal
from gateway.identity.models import FacilityCreate, FacilityKind
from gateway.identity.passwords import hash_password

DEMO_PASSWORD = "Demo@2026"  # noqa: S105 - development only; refused in production
DEMO_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://telehealth.local/demo-region/qinghe")
SEED_LOCK = 0x7E1E_5EED
# Fixed base32 TOTP secrets of the two demo administrators (`make otp` prints their codes).
HOSPITAL_ADMIN_TOTP = "QINGHEHOSPITALADMINDEMOSECRET234"
PLATFORM_ADMIN_TOTP = "QINGHEPLATFORMADMINDEMOSECRET567"


@dataclass(frozen=True)
class DemoFacility:
    code: str
    kind: FacilityKind
    name_zh: str
    name_en: str
    parent_code: str | None = None
    level: str | None = None
    reading_centre_code: str | None = None

    @property
    def id(self) -> UUID:
        return uuid.uuid5(DEMO_NAMESPACE, f"facility:{self.code}")


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: str
    facility_code: str
    totp_secret: str | None = None  # base32; fixed so `make otp` can print the current code

    @property
    def id(self) -> UUID:
        return uuid.uuid5(DEMO_NAMESPACE, f"user:{self.username}")


REGION, CITY_HOSPITAL, COUNTY_HOSPITAL = "QH", "QH-CITY1", "QH-COUNTY"
CHENGGUAN, DONGCUN, LIJIA, WANGZHUANG = "QH-CG", "QH-CG-DC", "QH-LJ", "QH-WZ"

# Parents before children.
DEMO_FACILITIES: list[DemoFacility] = [
    DemoFacility(REGION, "region", "清河县", "Qinghe County", level="county"),
    DemoFacility(CITY_HOSPITAL, "hospital", "市第一人民医院", "City First People's Hospital", REGION, level="tertiary"),
    DemoFacility(
        COUNTY_HOSPITAL, "hospital", "清河县人民医院", "Qinghe County People's Hospital", REGION, level="county"
    ),
    DemoFacility(
        CHENGGUAN,
        "township",
        "城关镇卫生院",
        "Chengguan Township Health Centre",
        COUNTY_HOSPITAL,
        level="township",
        reading_centre_code=COUNTY_HOSPITAL,
    ),
    DemoFacility(
        DONGCUN, "village", "城关镇东村卫生室", "Chengguan Dongcun Village Clinic", CHENGGUAN, level="village"
    ),
    DemoFacility(
        LIJIA,
        "township",
        "李家镇卫生院",
        "Lijia Township Health Centre",
        COUNTY_HOSPITAL,
        level="township",
        reading_centre_code=COUNTY_HOSPITAL,
    ),
    DemoFacility(
        WANGZHUANG,
        "township",
        "王庄乡卫生院",
        "Wangzhuang Township Health Centre",
        COUNTY_HOSPITAL,
        level="township",
        reading_centre_code=COUNTY_HOSPITAL,
    ),
]

DEMO_ACCOUNTS: list[DemoAccount] = [
    DemoAccount("doctor_a", "张医生（城关镇）", Role.TOWNSHIP_DOCTOR, CHENGGUAN),
    DemoAccount("doctor_b", "李医生（李家镇）", Role.TOWNSHIP_DOCTOR, LIJIA),
    DemoAccount("tech_a", "王技师（城关镇）", Role.TECHNICIAN, CHENGGUAN),
    DemoAccount("tech_b", "赵技师（李家镇）", Role.TECHNICIAN, LIJIA),
    DemoAccount("phd_a", "刘公卫（城关镇）", Role.PUBLIC_HEALTH, CHENGGUAN),
    DemoAccount("phd_b", "陈公卫（李家镇）", Role.PUBLIC_HEALTH, LIJIA),
    DemoAccount("specialist", "孙主任（县医院）", Role.SPECIALIST, COUNTY_HOSPITAL),
    DemoAccount("specialist_city", "周主任（市一院）", Role.SPECIALIST, CITY_HOSPITAL),
    DemoAccount(
        "hospital_admin",
        "吴管理员（县医院）",
        Role.FACILITY_ADMIN,
        COUNTY_HOSPITAL,
        totp_secret=HOSPITAL_ADMIN_TOTP,
    ),
    DemoAccount("analyst", "郑分析员（卫健局）", Role.BUREAU_ANALYST, REGION),
    DemoAccount("admin", "平台管理员", Role.PLATFORM_ADMIN, REGION, totp_secret=PLATFORM_ADMIN_TOTP),
]


def demo_facility(code: str) -> DemoFacility:
    for f in DEMO_FACILITIES:
        if f.code == code:
            return f
    raise KeyError(code)


def demo_account(username: str) -> DemoAccount:
    for a in DEMO_ACCOUNTS:
        if a.username == username:
            return a
    raise KeyError(username)


async def seed_demo_region(conn: asyncpg.Connection) -> bool:
    """Add the demo facilities and accounts that are missing; True when anything was added.

    Runs in the caller's transaction. Existing rows (matched by code / username) are left as they are.
    """
    if platform_settings().th_env == "production":
        raise RuntimeError("refusing to seed demo accounts with a published password in production")
    await conn.execute("SELECT pg_advisory_xact_lock($1)", SEED_LOCK)
    ids: dict[str, UUID] = {}
    added_facilities: list[str] = []
    for f in DEMO_FACILITIES:
        existing = await facilities.get_by_code(conn, f.code)
        if existing is not None:
            ids[f.code] = existing.id
            continue
        data = FacilityCreate(
            parent_id=ids[f.parent_code] if f.parent_code else None,
            kind=f.kind,
            level=f.level,
            code=f.code,
            name_zh=f.name_zh,
            name_en=f.name_en,
            reading_centre_id=ids[f.reading_centre_code] if f.reading_centre_code else None,
        )
        ids[f.code] = (await facilities.insert(conn, f.id, data)).id
        added_facilities.append(f.code)

    added_users: list[str] = []
    seal = totp_seal()
    for a in DEMO_ACCOUNTS:
        if await repo.user_for_login(conn, a.username) is not None:
            continue
        await repo.insert_user(
            conn,
            user_id=a.id,
            username=a.username,
            display_name=a.display_name,
            facility_id=ids[a.facility_code],
            roles=[str(a.role)],
            password_hash=await hash_password(DEMO_PASSWORD),
            totp_secret=seal.seal(a.id, a.totp_secret) if a.totp_secret else None,
        )
        added_users.append(a.username)

    if not (added_facilities or added_users):
        return False
    # Written in SQL rather than with common.audit.write: the caller's connection may have no JSON codec.
    await conn.execute(
        "INSERT INTO audit.events (source, action, outcome, object_type, object_id, detail, seq, occurred_at,"
        " prev_hash, hash) VALUES ('gateway', 'seed.demo_region', 'success', 'facility', $1,"
        " jsonb_build_object('facilities', $2::text[], 'users', $3::text[]), 0, now(), ''::bytea, ''::bytea)",
        str(ids[REGION]),
        added_facilities,
        added_users,
    )
    return True


async def _main() -> None:
    settings = platform_settings()
    conn = await asyncpg.connect(settings.require_database_url())
    try:
        async with conn.transaction():
            changed = await seed_demo_region(conn)
    finally:
        await conn.close()
    print("demo region seeded" if changed else "demo region already present; nothing changed")


if __name__ == "__main__":
    asyncio.run(_main())
