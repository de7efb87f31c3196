"""``store_instances``: the instances of one STOW-RS request stored together, with the outcomes (and the
durability) of ``service.store_instance`` called once per instance, at a fraction of its cost.

What a request of N instances costs: one parse per instance (all in one worker-thread call), one lookup
transaction for all of them, the N objects written concurrently (so their fsyncs overlap instead of queueing),
then ONE index transaction (one commit, one WAL flush) with the instance rows inserted in one pipelined round
trip. The answer goes out after the objects are fsynced and the index is committed, as before: nothing
acknowledged can be lost.

The batch only takes the common case: new SOP Instances. Everything else keeps the single-instance path and
its exact policy: a SOP Instance UID already archived (duplicate or replacement), the same UID twice in one
request, and any refusal or error inside the batch transaction (the transaction is rolled back and each of its
instances is indexed on its own by ``service.index_written``, which also removes the objects it refuses).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from common.auth import Principal
from common.events import record_event
from services.imaging import repository as repo
from services.imaging import service
from services.imaging.index import ParsedInstance
from services.imaging.schemas import (
    FAILURE_OUT_OF_RESOURCES,
    Caller,
    ModalityCaller,
    Origin,
    StoreOutcome,
    StoreStatus,
    failed,
)

log = logging.getLogger("telehealth.imaging")


@dataclass
class Item:
    """One instance of a request: its bytes in memory (``data``) or spooled to ``path``. ``sha256`` may be
    left out for bytes in memory: they are hashed in the worker thread that parses them."""

    size: int
    data: bytes | None = None
    path: Path | None = None
    sha256: str = ""

    @property
    def source(self) -> Path | bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path


class _Fallback(Exception):
    """The batch transaction met something the single-instance path decides: roll back, then one by one."""


@dataclass
class _New:
    index: int
    item: Item
    parsed: ParsedInstance
    key: str
    facility: UUID


async def store_instances(archive: service.Archive, items: Sequence[Item], caller: Caller, origin: Origin, *,
                          expected_study_uid: str | None = None) -> list[StoreOutcome]:
    """Archive the instances of one request; the outcomes in the order of ``items``."""
    principal = caller.principal() if isinstance(caller, ModalityCaller) else caller
    if not isinstance(caller, ModalityCaller):
        service.require_store_role(principal)
    outcomes: list[StoreOutcome | None] = [service.too_large(archive, it.size) for it in items]
    todo = [i for i, o in enumerate(outcomes) if o is None]

    def parse_all() -> list[ParsedInstance | StoreOutcome]:
        out = []
        for i in todo:
            it = items[i]
            if not it.sha256 and it.data is not None:
                it.sha256 = hashlib.sha256(it.data).hexdigest()
            elif not it.sha256 and it.path is not None:
                it.sha256 = service.hash_file(it.path)[0]
            out.append(service.parse_checked(archive, it.source, expected_study_uid))
        return out

    parsed_all = await asyncio.to_thread(parse_all)
    parsed: dict[int, ParsedInstance] = {}
    for i, p in zip(todo, parsed_all, strict=True):
        if isinstance(p, StoreOutcome):
            outcomes[i] = p
        else:
            parsed[i] = p
    if not parsed:
        return [o for o in outcomes if o is not None]
    visible = service.visible_facilities(principal)
    async with archive.db.transaction(principal) as conn:
        existing = await repo.find_instances(conn, sorted({p.sop_instance_uid for p in parsed.values()}), visible)
        owners = await repo.study_owners(conn, sorted({p.study_uid for p in parsed.values()}), visible)
    fresh: list[_New] = []
    single: list[int] = []  # the single-instance path, in request order, after the batch
    seen: set[str] = set()
    for i, p in parsed.items():
        if p.sop_instance_uid in existing or p.sop_instance_uid in seen:
            single.append(i)
            continue
        seen.add(p.sop_instance_uid)
        facility = owners.get(p.study_uid) or principal.facility_id
        fresh.append(_New(i, items[i], p, service.object_key(facility, p), facility))
    written = await _write(archive, fresh, outcomes)
    if written:
        try:
            async with archive.db.transaction(principal) as conn:
                for new, outcome in zip(written, await _index_batch(conn, principal, caller, origin, written),
                                        strict=True):
                    outcomes[new.index] = outcome
        except BaseException as exc:
            if not isinstance(exc, Exception):  # cancelled (the client went away): no row points at these
                await asyncio.gather(*(service.remove_object(archive.store, n.key) for n in written))
                raise
            if not isinstance(exc, _Fallback | asyncpg.UniqueViolationError | asyncpg.DeadlockDetectedError):
                log.warning("batch indexing failed; indexing one by one", extra={"error_type": type(exc).__name__})
            for new in written:
                outcomes[new.index] = await service.index_written(
                    archive, principal, caller, origin, new.parsed, new.key, new.item.sha256, new.item.size,
                    new.facility)
    for i in single:
        it = items[i]
        outcomes[i] = await service.store_checked(archive, it.source, principal, caller, origin, expected_study_uid,
                                                  it.sha256, it.size)
    return [o for o in outcomes if o is not None]


async def _write(archive: service.Archive, fresh: list[_New], outcomes: list[StoreOutcome | None]) -> list[_New]:
    """Write the objects concurrently (each put is durable when it returns); those that failed get 0xA700."""
    async def put(new: _New) -> None:
        it = new.item
        source: Any = it.data if it.data is not None else service.file_chunks(it.path) if it.path else b""
        await archive.store.put(new.key, source, content_type="application/dicom", length=new.item.size)

    results = await asyncio.gather(*(put(n) for n in fresh), return_exceptions=True)
    ok = []
    for new, result in zip(fresh, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            log.warning("object store write failed", extra={"error_type": type(result).__name__})
            outcomes[new.index] = failed(FAILURE_OUT_OF_RESOURCES, "the object store is not available; retry later",
                                         **_ids(new.parsed))
        else:
            ok.append(new)
    return ok


async def _index_batch(conn: asyncpg.Connection, principal: Principal, caller: Caller, origin: Origin,
                       batch: list[_New]) -> list[StoreOutcome]:
    """All rows of the batch in the caller's transaction; raises _Fallback for anything not plainly new."""
    visible = service.visible_facilities(principal)
    studies: dict[str, repo.StudyRef] = {}
    created: set[str] = set()
    series_ids: dict[str, UUID] = {}
    new_series: set[str] = set()
    # Studies in UID order: two requests lock the same studies in the same order (no deadlock between them).
    for new in sorted(batch, key=lambda n: n.parsed.study_uid):
        p = new.parsed
        if p.study_uid in studies:
            continue
        study = await repo.lock_study(conn, p.study_uid, visible)
        if study is None:
            patient = await repo.upsert_patient(conn, new.facility, p)
            study_id = await repo.insert_study(conn, new.facility, patient, p)
            if study_id is None:
                raise _Fallback("the study appeared meanwhile or belongs to a facility the caller cannot see")
            study = repo.StudyRef(study_id, new.facility, True)
            created.add(p.study_uid)
        if study.facility_id != new.facility:
            raise _Fallback("the study's owner changed since the lookup")
        studies[p.study_uid] = study
    for new in batch:
        p = new.parsed
        if p.series_uid in series_ids:
            continue
        study = studies[p.study_uid]
        row = await repo.series_row(conn, p.series_uid)
        if row is None:
            series_id = await repo.insert_series(conn, study.facility_id, study.id, p)
            if series_id is None:
                raise _Fallback("the series belongs to a facility the caller cannot see")
            new_series.add(p.series_uid)
        elif row["study_ref"] != study.id:
            raise _Fallback("the Series Instance UID belongs to another study")
        else:
            series_id = row["id"]
        series_ids[p.series_uid] = series_id
    if await repo.find_instances(conn, [n.parsed.sop_instance_uid for n in batch], visible, lock=True):
        raise _Fallback("an instance arrived meanwhile")
    rows = []
    for new in batch:
        study = studies[new.parsed.study_uid]
        rows.append(({"facility_id": study.facility_id, "source_facility_id": principal.facility_id,
                      "study_ref": study.id, "series_ref": series_ids[new.parsed.series_uid],
                      "object_key": new.key, "size_bytes": new.item.size, "sha256": new.item.sha256,
                      "origin": origin.value,
                      "source_ae_title": caller.ae_title if isinstance(caller, ModalityCaller) else None,
                      "received_by": None if isinstance(caller, ModalityCaller) else principal.user_id}, new.parsed))
    instance_ids = await repo.insert_instances(conn, rows)
    # Counts per (series, modality), in the locking order of the single path: study row, then series row.
    counts: dict[tuple[str, str], list[int]] = {}
    for new in batch:
        c = counts.setdefault((new.parsed.series_uid, new.parsed.modality), [0, 0])
        c[0] += 1
        c[1] += new.item.size
    study_of_series = {n.parsed.series_uid: n.parsed.study_uid for n in batch}
    counted: set[str] = set()
    for (series_uid, modality), (n, size) in counts.items():
        study = studies[study_of_series[series_uid]]
        await repo.count_instance(conn, study.id, series_ids[series_uid],
                                  new_series=series_uid in new_series and series_uid not in counted,
                                  modality=modality, instances=n, size_delta=size)
        counted.add(series_uid)
    outcomes = []
    announced: set[str] = set()
    for new, instance_id in zip(batch, instance_ids, strict=True):
        p = new.parsed
        study = studies[p.study_uid]
        first = p.study_uid in created and p.study_uid not in announced
        if first:
            announced.add(p.study_uid)
            await record_event(conn, "imaging", "imaging.study_received", facility_id=study.facility_id,
                               subject_type="study", subject_id=study.id,
                               payload={"modality": p.modality, "origin": origin.value,
                                        "source_facility_id": str(principal.facility_id)})
        outcomes.append(StoreOutcome(StoreStatus.STORED, **_ids(p), instance_id=instance_id, study_id=study.id,
                                     new_study=first, facility_id=study.facility_id))
    return outcomes


def _ids(p: ParsedInstance) -> dict[str, Any]:
    return {"sop_class_uid": p.sop_class_uid, "sop_instance_uid": p.sop_instance_uid, "study_uid": p.study_uid,
            "series_uid": p.series_uid}

