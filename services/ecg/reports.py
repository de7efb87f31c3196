"""The signed report out: PDF (report_pdf.py) and DICOM ECG waveform, rendered by the ``ecg.render_report`` task.

The DICOM object is a 12-lead ECG Waveform (1.2.840.10008.5.1.4.1.1.9.1.1) when the recording has only
standard leads at 200–1000 Hz, else a General ECG Waveform (…9.1.2): the first 10 s of the signal, the very
int16 counts kept in object storage with each lead's sensitivity, and the signed report (measurements,
statements, conclusion, signer, content hash) as waveform text annotations. Renderings are stored under
versioned keys (one version per addendum) so a download never meets a half-replaced file.
"""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

from common.auth import system_principal
from common.db import Database
from common.storage import ObjectStore
from services.ecg import repository as repo
from services.ecg import repository_reports as rr
from services.ecg.report_pdf import ReportDocument, render_pdf
from services.ecg.schemas import SignalLayout
from services.ecg.settings import EcgSettings, ecg_settings
from services.ecg.signal_store import MISSING, byte_range, decode

log = logging.getLogger("telehealth.ecg.reports")

TWELVE_LEAD_ECG = "1.2.840.10008.5.1.4.1.1.9.1.1"
GENERAL_ECG = "1.2.840.10008.5.1.4.1.1.9.1.2"
TRACING_SECONDS = 10.0
SCPECG_CODES = {
    "I": ("5.6.3-9-1", "Lead I (Einthoven)"), "II": ("5.6.3-9-2", "Lead II"), "V1": ("5.6.3-9-3", "Lead V1"),
    "V2": ("5.6.3-9-4", "Lead V2"), "V3": ("5.6.3-9-5", "Lead V3"), "V4": ("5.6.3-9-6", "Lead V4"),
    "V5": ("5.6.3-9-7", "Lead V5"), "V6": ("5.6.3-9-8", "Lead V6"), "III": ("5.6.3-9-61", "Lead III"),
    "aVR": ("5.6.3-9-62", "aVR, augmented voltage, right"), "aVL": ("5.6.3-9-63", "aVL, augmented voltage, left"),
    "aVF": ("5.6.3-9-64", "aVF, augmented voltage, foot"),
}


def _code(value: str, scheme: str, meaning: str, version: str | None = None) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    if version:
        item.CodingSchemeVersion = version
    item.CodeMeaning = meaning[:64]
    return item


def _uid(*parts: str) -> UID:
    return generate_uid(entropy_srcs=list(parts))


def _da_tm(t: datetime) -> tuple[str, str]:
    u = t.astimezone(UTC)
    return u.strftime("%Y%m%d"), u.strftime("%H%M%S")


def _text_annotation(text: str, group: int) -> Dataset:
    item = Dataset()
    item.UnformattedTextValue = text[:1024]
    item.AnnotationGroupNumber = group
    return item


def build_dicom(doc: ReportDocument, counts: np.ndarray, gains_mv: list[float], *, recording_id: UUID,
                version: int, patient_id: str | None, patient_sex: str | None) -> bytes:
    """A DICOM ECG waveform object (bytes) holding ``counts`` (samples x leads int16) and the signed text."""
    leads = doc.tracing_leads
    twelve = set(leads) <= set(SCPECG_CODES) and 200 <= doc.tracing_fs <= 1000 and len(leads) <= 13
    sop_class = UID(TWELVE_LEAD_ECG if twelve else GENERAL_ECG)
    sop_instance = _uid(str(recording_id), "report", str(version))

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_instance
    ds.PatientName = ""
    ds.PatientID = (patient_id or str(recording_id))[:64]
    ds.PatientBirthDate = ""
    ds.PatientSex = {"M": "M", "F": "F", "male": "M", "female": "F"}.get(str(patient_sex or ""), "")
    ds.StudyInstanceUID = f"2.25.{recording_id.int}"
    ds.SeriesInstanceUID = _uid(str(recording_id), "series")
    ds.StudyID = str(recording_id)[:16]
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDate, ds.StudyTime = _da_tm(doc.received_at)
    ds.ContentDate, ds.ContentTime = _da_tm(doc.signed_at)
    ds.AcquisitionDateTime = "".join(_da_tm(doc.received_at))
    ds.Modality = "ECG"
    ds.SeriesNumber = 1
    ds.InstanceNumber = version
    ds.Manufacturer = str(doc.device.get("manufacturer") or "")[:64]
    ds.ManufacturerModelName = str(doc.device.get("model") or "")[:64]
    ds.SeriesDescription = "ECG report (signed)"

    group = Dataset()
    group.MultiplexGroupTimeOffset = 0
    group.TriggerTimeOffset = 0
    group.WaveformOriginality = "ORIGINAL"
    group.NumberOfWaveformChannels = len(leads)
    group.NumberOfWaveformSamples = int(counts.shape[0])
    group.SamplingFrequency = f"{doc.tracing_fs:g}"
    group.MultiplexGroupLabel = "RHYTHM"
    channels = []
    for name, gain in zip(leads, gains_mv, strict=True):
        ch = Dataset()
        code, meaning = SCPECG_CODES.get(name, ("5.6.3-9-0", f"Lead {name}"))
        ch.ChannelSourceSequence = DicomSequence([_code(code, "SCPECG", meaning, "1.3")])
        ch.ChannelSensitivity = f"{gain * 1000:.6g}"
        ch.ChannelSensitivityUnitsSequence = DicomSequence([_code("uV", "UCUM", "microvolt", "1.4")])
        ch.ChannelSensitivityCorrectionFactor = "1"
        ch.ChannelBaseline = "0"
        ch.ChannelSampleSkew = "0"
        ch.WaveformBitsStored = 16
        channels.append(ch)
    group.ChannelDefinitionSequence = DicomSequence(channels)
    group.WaveformBitsAllocated = 16
    group.WaveformSampleInterpretation = "SS"
    group.WaveformPaddingValue = int(MISSING).to_bytes(2, "little", signed=True)
    group.WaveformData = np.ascontiguousarray(counts, dtype="<i2").tobytes()
    ds.WaveformSequence = DicomSequence([group])

    notes = [f"{k}: {v}" for k, v in doc.measurements.items() if v is not None]
    notes += [" / ".join(t for t in (st.get("zh"), st.get("en")) if t) for st in doc.statements]
    if doc.conclusion:
        notes.append(doc.conclusion)
    notes.append(f"Signed by {doc.signer_name} at {doc.signed_at.astimezone(UTC).isoformat()}")
    notes.append(f"SHA-256 {doc.content_hash}")
    notes += [f"Addendum {a['created_at'].astimezone(UTC).isoformat()} {a['author_name']}: {a['text']}"
              for a in doc.addenda]
    ds.WaveformAnnotationSequence = DicomSequence([_text_annotation(n, 1) for n in notes if n])

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


async def _tracing_counts(store: ObjectStore, key: str, layout: SignalLayout, fs: float) -> np.ndarray:
    stop = min(layout.samples, round(TRACING_SECONDS * fs))
    offset, length = byte_range(layout, 0, stop)
    raw = bytearray()
    async for chunk in store.get(key, offset=offset, length=length):
        raw.extend(chunk)
    return np.frombuffer(bytes(raw), dtype="<i2").reshape(-1, layout.leads)


async def render_report(db: Database, store: ObjectStore, recording_id: UUID,
                        settings: EcgSettings | None = None) -> dict[str, Any]:
    """Render and store the signed report's PDF and DICOM (idempotent; the newest version wins)."""
    s = settings or ecg_settings()
    system = system_principal()
    async with db.transaction(system) as conn:
        report = await rr.render_job(conn, recording_id)
        if report is None:
            return {"recording_id": str(recording_id), "status": "not_signed"}
        addenda = await rr.addenda_of(conn, report["id"])
        rec = await repo.render_source(conn, recording_id)
    version = len(addenda) + 1
    if report["rendered_version"] >= version and report["pdf_key"]:
        return {"recording_id": str(recording_id), "status": "already_rendered", "version": version}
    layout = SignalLayout(**rec["signal_layout"])
    fs = float(rec["fs"])
    counts = await _tracing_counts(store, rec["signal_key"], layout, fs)
    doc = ReportDocument(
        recording_id=str(recording_id), priority=rec["priority"], received_at=rec["received_at"],
        signed_at=report["signed_at"], signer_name=report["signer_name"], content_hash=report["content_hash"],
        source_format=rec["source_format"], fs=fs, lead_names=list(rec["lead_names"]),
        duration_s=float(rec["duration_s"]), device=dict(rec["device"] or {}),
        file_patient=dict(rec["file_patient"] or {}),
        patient_ref=str(rec["patient_id"])[:8] if rec["patient_id"] else None,
        measurements=dict(report["measurements"]), statements=list(report["statements"]),
        conclusion=report["conclusion"], tracing=decode(counts, layout), tracing_fs=fs,
        tracing_leads=list(rec["lead_names"]), addenda=[a.model_dump() for a in addenda],
    )
    font = str(s.cjk_font) if s.cjk_font else None
    pdf = await asyncio.to_thread(render_pdf, doc, font)
    dicom = await asyncio.to_thread(
        build_dicom, doc, counts, layout.gain_mv, recording_id=recording_id, version=version,
        patient_id=str(rec["patient_id"]) if rec["patient_id"] else None,
        patient_sex=(rec["file_patient"] or {}).get("sex"),
    )
    prefix = f"ecg/{rec['facility_id']}/{recording_id}/report/"
    pdf_key, dicom_key = f"{prefix}report-v{version}.pdf", f"{prefix}report-v{version}.dcm"
    await store.put(pdf_key, pdf, content_type="application/pdf")
    await store.put(dicom_key, dicom, content_type="application/dicom")
    async with db.transaction(system) as conn:
        await rr.set_rendered(conn, report["id"], pdf_key, dicom_key, version)
    return {"recording_id": str(recording_id), "status": "rendered", "version": version,
            "pdf_bytes": len(pdf), "dicom_bytes": len(dicom)}
