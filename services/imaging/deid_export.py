"""De-identified export jobs: request (API), build (Celery ``imaging.build_export``), status and download.

A request names studies the caller may see (standing policy or a grant): each is checked at request time, the
job row keeps the UIDs, and the task builds ``<new study>/<new series>/<new sop>.dcm`` entries in a ZIP under
``imaging-exports/<export id>.zip`` in the object store, one :class:`deid.ExportContext` for the whole export
(UIDs consistent across its studies). Refused instances (burned-in annotation) are listed in the report.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any
from uuid import UUID

from common.auth import Principal, system_principal
from common.db import Database
from common.errors import Forbidden, Invalid, NotFound
from common.storage import ObjectStore
from services.imaging import repository_retrieve as rr
from services.imaging import repository_sharing as rs
from services.imaging.deid import ExportContext, Refused, deidentify_bytes
from services.imaging.service import Archive, file_chunks, require_reader, visible_facilities
from services.imaging.sharing import SHARE_ROLES, granted_scope

MAX_STUDIES = 100


def export_key(export_id: UUID) -> str:
    return f"imaging-exports/{export_id}.zip"


def export_json(row: Any) -> dict[str, Any]:
    return {"id": str(row["id"]), "status": row["status"], "study_uids": list(row["study_uids"]),
            "size_bytes": row["size_bytes"], "sha256": row["sha256"], "report": json.loads(row["report"] or "{}"),
            "error": row["error"], "created_at": row["created_at"].isoformat(),
            "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None}


async def request_export(archive: Archive, principal: Principal, study_uids: list[str]) -> dict[str, Any]:
    require_reader(principal)
    if not principal.has_role(*SHARE_ROLES):
        raise Forbidden("exports need a township_doctor, technician or specialist role")
    uids = list(dict.fromkeys(study_uids))
    if not uids or len(uids) > MAX_STUDIES:
        raise Invalid(f"name 1 to {MAX_STUDIES} studies")
    for uid in uids:
        async with archive.db.transaction(principal) as conn:
            seen = await rs.study_row(conn, uid, visible_facilities(principal))
        if seen is None and await granted_scope(archive, principal, uid) is None:
            raise NotFound(f"no such study: {uid}")
    async with archive.db.transaction(principal) as conn:
        export_id = await rs.insert_export(conn, principal.facility_id, principal.user_id, uids)
        row = await rs.export_row(conn, export_id)
    return export_json(row)


async def export_of(archive: Archive, principal: Principal, export_id: UUID) -> Any:
    """The caller's facility's export, or 404."""
    require_reader(principal)
    async with archive.db.transaction(principal) as conn:
        row = await rs.export_row(conn, export_id)
    if row is None or row["facility_id"] != principal.facility_id:
        raise NotFound("no such export")
    return row


async def build_export(db: Database, store: ObjectStore, export_id: UUID) -> dict[str, Any]:
    """The task: de-identify every instance of the export's studies into one ZIP. Idempotent (rebuilds)."""
    system = system_principal()
    async with db.transaction(system) as conn:
        row = await rs.export_row(conn, export_id)
        if row is None or row["status"] == "ready":
            return {"status": row["status"] if row else "missing"}
        await rs.set_export_status(conn, export_id, "running")
    ctx = ExportContext()
    report: dict[str, Any] = {"instances": 0, "studies": 0, "refused": []}
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="imaging-export-"))
    try:
        path = work / "export.zip"
        zf = await asyncio.to_thread(zipfile.ZipFile, path, "w", zipfile.ZIP_DEFLATED, True)
        try:
            for study_uid in row["study_uids"]:
                async with db.transaction(system) as conn:
                    owner = await rs.study_by_uid(conn, study_uid)
                    found = await rr.instances(conn, [owner["facility_id"]], study_uid) if owner else []
                if found:
                    report["studies"] += 1
                for inst in found:
                    data = b"".join([chunk async for chunk in store.get(inst.object_key)])
                    try:
                        out, ids = await asyncio.to_thread(deidentify_bytes, data, ctx)
                    except Refused as exc:
                        report["refused"].append({"sop_instance_uid_hash": hashlib.sha256(
                            inst.sop_instance_uid.encode()).hexdigest()[:16], "reason": str(exc)})
                        continue
                    name = f"{ids['study']}/{ids['series']}/{ids['sop']}.dcm"
                    await asyncio.to_thread(zf.writestr, name, out)
                    report["instances"] += 1
        finally:
            await asyncio.to_thread(zf.close)
        digest, size = await asyncio.to_thread(_hash, path)
        await store.put(export_key(export_id), file_chunks(path), content_type="application/zip", length=size)
    except Exception as exc:
        async with db.transaction(system) as conn:
            await rs.set_export_status(conn, export_id, "failed", report=json.dumps(report),
                                       error=type(exc).__name__)
        raise
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    async with db.transaction(system) as conn:
        await rs.set_export_status(conn, export_id, "ready", object_key=export_key(export_id), size_bytes=size,
                                   sha256=digest, report=json.dumps(report))
    return {"status": "ready", **report, "refused": len(report["refused"])}


def _hash(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
