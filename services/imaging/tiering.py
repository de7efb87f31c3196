"""Hot/cold tiering: studies older than their facility's days-until-cold move to the cold tier and still
retrieve transparently.

- The cold tier is a second store: ``open_store(settings, bucket=IMAGING_COLD_BUCKET or the hot bucket,
  prefix=IMAGING_COLD_PREFIX)``. An instance row whose ``object_key`` starts with ``cold/`` lives there (the
  rest of the key is its key in the cold store); every other key is in the hot store.
- :class:`TieredStore` wraps the hot store of the imaging service (installed at startup, app.py): every read
  (WADO-RS/URI, frames, rendered, the study ZIP) goes wherever the row's key says. The first read of a cold
  study within a minute records the event ``imaging.cold_retrieve`` and, with IMAGING_REWARM_ON_RETRIEVE,
  queues ``imaging.rewarm_study``.
- :func:`move_due_studies` (beat task ``imaging.move_cold_studies``): for each hot study older than
  ``imaging.tiering_policies.cold_after_days`` (default IMAGING_COLD_AFTER_DAYS) of its owner facility, each
  instance is copied, the copy's sha256 verified against the row, the row switched (only if it still points at
  the old key), and the hot copy deleted after the commit. Re-running is safe: switched rows are skipped, a
  partial copy is overwritten, a row that changed meanwhile keeps its object and the stray copy is removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from pydantic_settings import SettingsConfigDict

from common.auth import Principal, Role, system_principal
from common.config import PlatformSettings, ServiceSettings, platform_settings
from common.db import Database
from common.errors import Forbidden
from common.events import record_event
from common.storage import ObjectInfo, ObjectStore, open_store
from services.imaging import repository_sharing as rs

log = logging.getLogger("telehealth.imaging.tiering")
COLD = "cold/"
HOT, COLD_TIER = "hot", "cold"


class TieringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IMAGING_", extra="ignore", case_sensitive=False)

    cold_after_days: int = 180         # when a facility has no row in imaging.tiering_policies
    cold_bucket: str = ""              # empty: the hot bucket
    cold_prefix: str = "cold"          # key prefix of the cold tier in its bucket
    rewarm_on_retrieve: bool = False   # a cold retrieve queues imaging.rewarm_study
    tiering_batch: int = 200           # studies per beat run


@lru_cache(maxsize=1)
def tiering_settings() -> TieringSettings:
    return TieringSettings()


def cold_store(settings: PlatformSettings | None = None, tiering: TieringSettings | None = None) -> ObjectStore:
    s, t = settings or platform_settings(), tiering or tiering_settings()
    return open_store(s, bucket=t.cold_bucket or None, prefix=t.cold_prefix)


def is_cold(key: str) -> bool:
    return key.startswith(COLD)


def study_of_key(key: str) -> tuple[UUID, str] | None:
    """(owner facility, study UID) of an archive key ``[cold/]imaging/<facility>/<study>/...``."""
    parts = key.removeprefix(COLD).split("/")
    if len(parts) < 4 or parts[0] != "imaging":
        return None
    try:
        return UUID(parts[1]), parts[2]
    except ValueError:
        return None


ColdRead = Callable[[str], Awaitable[None]]


class TieredStore:
    """The hot store, reading and deleting ``cold/`` keys from the cold store; writes of new keys go hot."""

    def __init__(self, hot: ObjectStore, cold: ObjectStore, on_cold_read: ColdRead | None = None):
        self.hot, self.cold, self.on_cold_read = hot, cold, on_cold_read

    def _route(self, key: str) -> tuple[ObjectStore, str]:
        return (self.cold, key[len(COLD):]) if is_cold(key) else (self.hot, key)

    async def put(self, key: str, data: AsyncIterator[bytes] | bytes, *,
                  content_type: str = "application/octet-stream", length: int | None = None) -> ObjectInfo:
        store, k = self._route(key)
        return await store.put(k, data, content_type=content_type, length=length)

    async def get(self, key: str, *, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        store, k = self._route(key)
        if store is self.cold and self.on_cold_read is not None:
            try:
                await self.on_cold_read(key)
            except Exception:  # recording must never break a retrieve
                log.exception("recording a cold retrieve failed")
        async for chunk in store.get(k, offset=offset, length=length):
            yield chunk

    async def read(self, key: str) -> bytes:
        store, k = self._route(key)
        return await store.read(k)

    async def stat(self, key: str) -> ObjectInfo:
        store, k = self._route(key)
        return await store.stat(k)

    async def exists(self, key: str) -> bool:
        store, k = self._route(key)
        return await store.exists(k)

    async def delete(self, key: str) -> None:
        store, k = self._route(key)
        await store.delete(k)

    def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        store, k = self._route(prefix)
        return store.list(k)

    async def presigned_get(self, key: str, *, expires_seconds: int = 900) -> str:
        store, k = self._route(key)
        return await store.presigned_get(k, expires_seconds=expires_seconds)

    async def check(self) -> None:
        await self.hot.check()


class ColdReadRecorder:
    """Records ``imaging.cold_retrieve`` once per study per minute and optionally queues a re-warm."""

    def __init__(self, db: Database, rewarm: bool, window_seconds: float = 60.0):
        self.db, self.rewarm, self.window = db, rewarm, window_seconds
        self._seen: dict[str, float] = {}

    async def __call__(self, key: str) -> None:
        found = study_of_key(key)
        if found is None:
            return
        facility, study_uid = found
        now = time.monotonic()
        if now - self._seen.get(study_uid, -1e9) < self.window:
            return
        self._seen[study_uid] = now
        if len(self._seen) > 10000:
            self._seen = {k: v for k, v in self._seen.items() if now - v < self.window}
        async with self.db.transaction(system_principal(facility)) as conn:
            await record_event(conn, "imaging", "imaging.cold_retrieve", facility_id=facility,
                               subject_type="study", subject_id=study_uid,
                               payload={"rewarm": self.rewarm})
        if self.rewarm:
            from common.tasks import celery_app

            await asyncio.to_thread(celery_app.send_task, "imaging.rewarm_study", args=[study_uid])


async def install_tiered_store(app: Any) -> None:
    """Startup hook of the imaging service: reads follow the row's tier."""
    t = tiering_settings()
    app.state.store = TieredStore(app.state.store, cold_store(app.state.settings, t),
                                  ColdReadRecorder(app.state.db, t.rewarm_on_retrieve))


# -- the per-facility policy ----------------------------------------------------------------------


async def facility_policy(db: Database, principal: Principal) -> dict[str, Any]:
    async with db.transaction(principal) as conn:
        days = await rs.cold_after_days(conn, principal.facility_id)
    default = tiering_settings().cold_after_days
    return {"facility_id": str(principal.facility_id), "cold_after_days": days or default, "default": days is None}


async def set_facility_policy(db: Database, principal: Principal, days: int) -> dict[str, Any]:
    if not principal.has_role(Role.FACILITY_ADMIN):
        raise Forbidden("setting the tiering policy needs the facility_admin role")
    async with db.transaction(principal) as conn:
        await rs.set_cold_after_days(conn, principal.facility_id, days)
    return {"facility_id": str(principal.facility_id), "cold_after_days": days, "default": False}


# -- moving studies -----------------------------------------------------------------------------


async def _copy_verified(src: ObjectStore, src_key: str, dst: ObjectStore, dst_key: str, sha256: str,
                         size: int) -> None:
    await dst.put(dst_key, src.get(src_key), content_type="application/dicom", length=size)
    digest = hashlib.sha256()
    async for chunk in dst.get(dst_key):
        digest.update(chunk)
    if digest.hexdigest() != sha256:
        await dst.delete(dst_key)
        raise RuntimeError(f"the copy of {src_key} does not match its sha256")


async def move_study(db: Database, hot: ObjectStore, cold: ObjectStore, study_id: UUID, to: str) -> dict[str, int]:
    """Move every instance of a study to tier ``to`` ('cold' or 'hot'), then mark the study. Idempotent."""
    system = system_principal()
    async with db.transaction(system) as conn:
        rows = await rs.study_instances_for_move(conn, study_id)
    moved = skipped = 0
    for row in rows:
        key: str = row["object_key"]
        if is_cold(key) == (to == COLD_TIER):
            skipped += 1
            continue
        if to == COLD_TIER:
            src, src_key, dst, dst_key, new_key = hot, key, cold, key, COLD + key
        else:
            src, src_key, dst, dst_key, new_key = cold, key[len(COLD):], hot, key[len(COLD):], key[len(COLD):]
        await _copy_verified(src, src_key, dst, dst_key, row["sha256"], row["size_bytes"])
        async with db.transaction(system) as conn:
            switched = await rs.switch_instance_key(conn, row["id"], key, new_key)
        if switched:
            await src.delete(src_key)
            moved += 1
        else:  # replaced or moved meanwhile: the copy is nobody's
            await dst.delete(dst_key)
    async with db.transaction(system) as conn:
        study = await rs.lock_study_for_move(conn, study_id)
        if study is not None:
            await rs.set_study_tier(conn, study_id, to)
            await record_event(conn, "imaging", "imaging.study_tiered", facility_id=study["facility_id"],
                               subject_type="study", subject_id=study_id,
                               payload={"tier": to, "moved": moved})
    return {"moved": moved, "skipped": skipped}


async def move_due_studies(db: Database, hot: ObjectStore, cold: ObjectStore,
                           tiering: TieringSettings | None = None) -> dict[str, Any]:
    t = tiering or tiering_settings()
    async with db.transaction(system_principal()) as conn:
        due = await rs.studies_due_cold(conn, t.cold_after_days, t.tiering_batch)
    studies = instances = failed = 0
    for study in due:
        try:
            result = await move_study(db, hot, cold, study["id"], COLD_TIER)
        except Exception:
            log.exception("moving a study to the cold tier failed", extra={"study_id": str(study["id"])})
            failed += 1
            continue
        studies += 1
        instances += result["moved"]
    return {"studies": studies, "instances": instances, "failed": failed, "at": datetime.now().isoformat()}


async def rewarm(db: Database, hot: ObjectStore, cold: ObjectStore, study_uid: str) -> dict[str, int]:
    async with db.transaction(system_principal()) as conn:
        study = await rs.study_by_uid(conn, study_uid)
    if study is None:
        return {"moved": 0, "skipped": 0}
    return await move_study(db, hot, cold, study["id"], HOT)
