"""The registry of DIMSE peers (``imaging.ae_titles``): which facility a calling AE title acts for, and
where a C-MOVE destination listens. Read by the listener as the platform (system principal)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from common.auth import system_principal
from common.db import Database


@dataclass(frozen=True)
class RegisteredAE:
    ae_title: str
    facility_id: UUID
    host: str | None
    port: int | None
    description: str
    active: bool



async def lookup(db: Database, ae_title: str) -> RegisteredAE | None:
    """The active registration of ``ae_title`` (surrounding spaces ignored), or None."""
    title = ae_title.strip()
    if not title:
        return None
    async with db.transaction(system_principal()) as conn:
        row = await conn.fetchrow("SELECT ae_title, facility_id, host, port, description, active FROM imaging.ae_titles"
                                  " WHERE ae_title = $1 AND active",
                                  title)
    return RegisteredAE(**dict(row)) if row is not None else None


async def register(db: Database, ae_title: str, facility_id: UUID, *, host: str | None = None,
                   port: int | None = None, description: str = "", active: bool = True) -> RegisteredAE:
    """Add or update an AE title (as the platform)."""
    async with db.transaction(system_principal()) as conn:
        row = await conn.fetchrow(
            "INSERT INTO imaging.ae_titles (ae_title, facility_id, host, port, description, active)"
            " VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (ae_title) DO UPDATE SET facility_id = EXCLUDED.facility_id, host = EXCLUDED.host,"
            " port = EXCLUDED.port, description = EXCLUDED.description, active = EXCLUDED.active,"
            " updated_at = now() RETURNING ae_title, facility_id, host, port, description, active",
            ae_title.strip(), facility_id, host, port, description, active)
    return RegisteredAE(**dict(row))


# One demo modality per township centre of the demo region (gateway/identity/seed.py; facility ids are
# uuid5 of the facility code, the same on every machine).
DEMO_AES: tuple[tuple[str, str, str], ...] = (
    ("CG_CT", "QH-CG", "城关镇卫生院 CT (demo)"),
    ("LJ_DR", "QH-LJ", "李家镇卫生院 DR (demo)"),
    ("WZ_US", "QH-WZ", "王庄乡卫生院 ultrasound (demo)"),
)


async def ensure_demo_aes(db: Database) -> list[str]:
    """Register the demo AEs that are missing (existing rows are left alone); the titles added."""
    from gateway.identity.seed import demo_facility

    added = []
    async with db.transaction(system_principal()) as conn:
        for title, code, description in DEMO_AES:
            status = await conn.execute(
                "INSERT INTO imaging.ae_titles (ae_title, facility_id, description) VALUES ($1, $2, $3)"
                " ON CONFLICT (ae_title) DO NOTHING", title, demo_facility(code).id, description)
            if status.endswith(" 1"):
                added.append(title)
    return added


async def get(db: Database, ae_title: str) -> RegisteredAE | None:
    """The registration of ``ae_title``, active or not."""
    async with db.transaction(system_principal()) as conn:
        row = await conn.fetchrow("SELECT ae_title, facility_id, host, port, description, active"
                                  " FROM imaging.ae_titles WHERE ae_title = $1", ae_title.strip())
    return RegisteredAE(**dict(row)) if row is not None else None


async def list_for(db: Database, facility_id: UUID | None) -> list[RegisteredAE]:
    """The AE titles of one facility, or of all (``None``), by title."""
    async with db.transaction(system_principal()) as conn:
        rows = await conn.fetch("SELECT ae_title, facility_id, host, port, description, active"
                                " FROM imaging.ae_titles WHERE $1::uuid IS NULL OR facility_id = $1"
                                " ORDER BY ae_title", facility_id)
    return [RegisteredAE(**dict(r)) for r in rows]
