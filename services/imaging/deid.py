"""De-identified export: chosen studies as a ZIP under DICOM PS3.15 Annex E, Basic Application Level
Confidentiality Profile (no options retained).

What :func:`deidentify` does to each instance (Table E.1-1, basic profile column, plus rules that cover whole
classes of attributes so that nothing identifying slips through an incomplete list):
- Z (emptied): Patient's Name, Birth Date, Sex, Referring Physician's Name, Accession Number, Study ID,
  Study Date/Time, Content Date/Time; Patient ID becomes a pseudonym (``ANON-0001``) consistent per original
  patient within one export.
- X (removed): institution, station, department, device serial, every other person name (physicians of
  record, performing, reading, operators, requesting ...), other patient IDs/names, address, phone, age,
  size, weight, comments, descriptions, protocol, request/procedure IDs and the other attributes of
  ``REMOVE`` below; every other date, time and date-time (DA/DT/TM) anywhere, also inside sequences;
  overlay data and comments (60xx); every private attribute.
- U (UIDs): every UID that is not a well-known DICOM UID (SOP classes, transfer syntaxes, coding schemes) is
  replaced by a new ``2.25.<uuid>`` UID, the same replacement for the same original everywhere in the export
  (references between instances, series and studies stay consistent). The file meta follows.
- Burned-in annotation: an instance with Burned In Annotation (0028,0301) = YES is refused (not written)
  and listed in the export report; so is one without it whose modality usually burns text in (US, SC, XC,
  OT, ES) unless ``allow_unflagged`` is set.
- Added: Patient Identity Removed (0012,0062) = YES, De-identification Method (0012,0063) and its code
  sequence (DCM 113100 "Basic Application Confidentiality Profile").
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from typing import Any

import pydicom
from pydicom._uid_dict import UID_dictionary
from pydicom.dataset import Dataset, FileMetaDataset

METHOD = "DICOM PS3.15 Annex E Basic Profile"  # LO: at most 64 characters
BURNED_IN_MODALITIES = frozenset({"US", "SC", "XC", "OT", "ES"})

# Z: kept, emptied (Type 2 attributes in most IODs).
EMPTY = (
    0x00100010,  # PatientName
    0x00100030,  # PatientBirthDate
    0x00100040,  # PatientSex
    0x00080090,  # ReferringPhysicianName
    0x00080050,  # AccessionNumber
    0x00200010,  # StudyID
    0x00080020,  # StudyDate
    0x00080030,  # StudyTime
    0x00080023,  # ContentDate
    0x00080033,  # ContentTime
)
PATIENT_ID = 0x00100020
# X: removed.
REMOVE = (
    0x00080080, 0x00080081, 0x00081040, 0x00080082,  # Institution name, address, department, code sequence
    0x00081010, 0x00181000, 0x00181002,  # StationName, DeviceSerialNumber, DeviceUID
    0x00081048, 0x00081049, 0x00081050, 0x00081052, 0x00081060, 0x00081062, 0x00081070, 0x00081072,
    0x00321032, 0x00321033, 0x00400006, 0x0040A075, 0x0040A123, 0x00080092, 0x00080094, 0x00080096,
    0x00101000, 0x00101001, 0x00101002, 0x00101040, 0x00101060, 0x00102154, 0x00101010, 0x00101020, 0x00101030,
    0x00102160, 0x00102180, 0x001021B0, 0x00104000, 0x00102000, 0x00102110, 0x001021C0, 0x001021D0,
    0x00101080, 0x00101081, 0x00101090, 0x00100050, 0x00100021, 0x00100032, 0x00101005, 0x00100101,
    0x00100102, 0x00101100, 0x00102150, 0x00102152, 0x00380010, 0x00380011, 0x00380300, 0x00380400,
    0x00081030, 0x0008103E, 0x00181030, 0x00400254, 0x00400253, 0x00400275, 0x00401001, 0x00400009,
    0x00321060, 0x00321070, 0x00400007, 0x00401400, 0x00324000, 0x00204000, 0x00081080, 0x00082111,
    0x00081110, 0x00081120, 0x00081111, 0x0040A730, 0x00700001, 0x00700084, 0x00700086, 0x00181400,
    0x00089123, 0x00080201, 0x00181004, 0x00181005, 0x00181007, 0x00181008, 0x00181009, 0x00181011,
    0x00181200, 0x00181201, 0x00189424, 0x0040A124, 0x00880140, 0x00400555, 0x0040A027, 0x00400241,
    0x00400242, 0x00400243, 0x00400244, 0x00400245, 0x00400250, 0x00400251, 0x00400280, 0x00402016,
    0x00402017, 0x00380500, 0x00081084,
)
ADDED = (0x00120062, 0x00120063, 0x00120064)


class Refused(Exception):
    """The instance may not be exported (burned-in annotation)."""


@dataclass
class ExportContext:
    """What stays consistent across the instances of one export: UID and patient pseudonyms."""

    uids: dict[str, str] = field(default_factory=dict)
    patients: dict[str, str] = field(default_factory=dict)
    allow_unflagged: bool = False

    def uid(self, original: str) -> str:
        if original not in self.uids:
            self.uids[original] = f"2.25.{uuid.uuid4().int}"
        return self.uids[original]

    def patient(self, original: str) -> str:
        if original not in self.patients:
            self.patients[original] = f"ANON-{len(self.patients) + 1:04d}"
        return self.patients[original]


def _well_known(value: str) -> bool:
    return value in UID_dictionary


def _scrub(ds: Dataset, ctx: ExportContext) -> None:
    for tag in REMOVE:
        if tag in ds:
            del ds[tag]
    for elem in list(ds):
        if elem.tag.is_private or ((elem.tag.group & 0xFF00) == 0x6000 and elem.tag.element in (0x3000, 0x4000)):
            del ds[elem.tag]
            continue
        if elem.VR == "SQ":
            for item in elem.value:
                _scrub(item, ctx)
            continue
        if int(elem.tag) in EMPTY or int(elem.tag) in ADDED:
            continue
        if elem.VR in ("DA", "DT", "TM"):
            del ds[elem.tag]
        elif elem.VR == "PN":
            del ds[elem.tag]
        elif elem.VR == "UI" and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            new = [v if _well_known(str(v)) else ctx.uid(str(v)) for v in values]
            elem.value = new if elem.VM > 1 else new[0]
    for tag in EMPTY:
        if tag in ds:
            ds[tag].value = ""


def deidentify(ds: Dataset, ctx: ExportContext) -> Dataset:
    """De-identify ``ds`` in place (and its file meta); Refused when burned-in annotation forbids it."""
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if burned == "YES":
        raise Refused("Burned In Annotation is YES: the pixel data may show identifying text")
    if not burned and not ctx.allow_unflagged and str(ds.get("Modality", "")).upper() in BURNED_IN_MODALITIES:
        raise Refused("no Burned In Annotation flag on a modality that usually burns text into the image")
    original_patient = str(ds.get("PatientID", "") or "")
    _scrub(ds, ctx)
    ds.PatientID = ctx.patient(original_patient)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = [code]
    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    if "MediaStorageSOPInstanceUID" in meta:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for tag in (0x00020016, 0x00020100, 0x00020102):  # source AE, private information creator and data
        if tag in meta:
            del meta[tag]
    ds.file_meta = meta
    return ds


def deidentify_bytes(data: bytes, ctx: ExportContext) -> tuple[bytes, dict[str, Any]]:
    """One Part-10 file in, its de-identified Part-10 bytes and new UIDs out."""
    ds = pydicom.dcmread(io.BytesIO(data))
    deidentify(ds, ctx)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), {"study": str(ds.StudyInstanceUID), "series": str(ds.SeriesInstanceUID),
                            "sop": str(ds.SOPInstanceUID)}
