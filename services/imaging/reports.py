"""The signed imaging report out: a PDF, and the same PDF as a DICOM Encapsulated PDF stored into the study.

``render_report`` runs as the Celery task ``imaging.render_report`` (services/imaging/tasks.py) after signing
and after each addendum. The DICOM object (Encapsulated PDF Storage, 1.2.840.10008.5.1.4.1.1.104.1, Modality
DOC) carries the study's Patient and Study modules from the index, goes in through ``store_instance`` as the
signer (a specialist of the reading facility) and so appears in QIDO-RS and WADO-RS as a series of the study:
one series per report, one instance per rendering (version = addenda + 1, deterministic SOP Instance UID).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

from common.auth import Principal, Role, system_principal
from common.db import Database
from common.storage import ObjectStore
from services.imaging import repository_reading as repo
from services.imaging.reports_pdf import ImagingReportDocument, render_pdf
from services.imaging.schemas import Origin
from services.imaging.service import Archive, store_instance

log = logging.getLogger("telehealth.imaging.reports")
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
REPORT_SERIES_NUMBER = 9001


def report_sop_uid(report_id: UUID, version: int) -> str:
    """The same UID for the same rendering (a re-run task replaces its own instance, never adds one)."""
    return str(generate_uid(entropy_srcs=[str(report_id), str(version)]))


def build_encapsulated_pdf(pdf: bytes, study_attributes: dict[str, Any], *, series_uid: str, sop_uid: str,
                           version: int, signed_at: datetime, signer_name: str, title: str) -> bytes:
    """A Part-10 Encapsulated PDF in the study (its Patient/Study modules from the index's DICOM JSON)."""
    ds = Dataset.from_json(study_attributes) if study_attributes else Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.SOPInstanceUID = sop_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = "DOC"
    ds.SeriesNumber = REPORT_SERIES_NUMBER
    ds.SeriesDescription = "影像诊断报告 Imaging report (signed)"
    ds.InstanceNumber = version
    local = signed_at.astimezone(UTC)
    ds.ContentDate = local.strftime("%Y%m%d")
    ds.ContentTime = local.strftime("%H%M%S")
    ds.AcquisitionDateTime = local.strftime("%Y%m%d%H%M%S")
    ds.ConversionType = "WSD"
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = title[:64]
    ds.ConceptNameCodeSequence = []
    ds.VerifyingObserverName = signer_name[:64]
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.Manufacturer = "telehealth imaging cloud"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(ENCAPSULATED_PDF)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def signer_caller(report: Any) -> Principal:
    """Who stores the DICOM report: the signer, at the reading facility, serving the study's owner."""
    return Principal(user_id=report["signed_by"], username="imaging-report", display_name=report["signer_name"],
                     roles=frozenset({Role.SPECIALIST}), facility_id=report["reading_facility_id"],
                     serves=frozenset({report["facility_id"]}))


async def render_report(db: Database, store: ObjectStore, study_ref: UUID) -> dict[str, Any]:
    """Render and store the signed report's PDF and DICOM (idempotent; the newest version wins)."""
    async with db.transaction(system_principal()) as conn:
        report, study = await repo.render_source(conn, study_ref)
        if report is None:
            return {"study_ref": str(study_ref), "status": "not_signed"}
        addenda = await repo.addenda_of(conn, report["id"])
    version = len(addenda) + 1
    if report["rendered_version"] >= version and report["pdf_key"]:
        return {"study_ref": str(study_ref), "status": "already_rendered", "version": version}
    doc = ImagingReportDocument(
        study_instance_uid=study["study_instance_uid"], study_description=study["study_description"],
        study_date=study["study_date"], priority=study["priority"], received_at=study["received_at"],
        modality=report["modality"], template=report["template"], findings=report["findings"],
        impression=report["impression"], critical=report["critical"], critical_note=report["critical_note"],
        signer_name=report["signer_name"], signed_at=report["signed_at"], content_hash=report["content_hash"],
        addenda=[a.model_dump() for a in addenda],
    )
    pdf = await asyncio.to_thread(render_pdf, doc, os.environ.get("IMAGING_CJK_FONT") or None)
    sop_uid = report_sop_uid(report["id"], version)
    dicom = await asyncio.to_thread(
        build_encapsulated_pdf, pdf, dict(study["attributes"] or {}), series_uid=report["report_series_uid"],
        sop_uid=sop_uid, version=version, signed_at=report["signed_at"], signer_name=report["signer_name"],
        title=doc.title,
    )
    pdf_key = f"imaging/{report['facility_id']}/{study['study_instance_uid']}/report-v{version}.pdf"
    await store.put(pdf_key, pdf, content_type="application/pdf")
    outcome = await store_instance(Archive.of(db, store), io.BytesIO(dicom), signer_caller(report), Origin.WEB,
                                   expected_study_uid=study["study_instance_uid"])
    if not outcome.ok:
        raise RuntimeError(f"storing the DICOM report failed: {outcome.failure_reason} {outcome.detail}")
    async with db.transaction(system_principal()) as conn:
        await repo.set_rendered(conn, report["id"], pdf_key, sop_uid, version)
    return {"study_ref": str(study_ref), "status": "rendered", "version": version, "pdf_bytes": len(pdf),
            "dicom_bytes": len(dicom), "sop_instance_uid": sop_uid}
