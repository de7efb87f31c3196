"""From a DICOM Part-10 file on local disk to what the archive indexes (no HTTP, no SQL).

``parse_instance(path)`` validates the file and returns a :class:`ParsedInstance`: the UIDs, the values of
the patient / study / series / instance rows, and the instance's DICOM JSON (PS3.18 Annex F) with every
binary value longer than the bulk-data threshold replaced by a BulkDataURI. Pixel data is never loaded
(pydicom's deferred reads): a 2 GB multi-frame costs the same as a 2 KB SR to index.

Rejections raise :class:`InvalidInstance` with the PS3.18 Failure Reason and a sentence for people:
- not Part 10 (no preamble and ``DICM``, no File Meta Information, no Transfer Syntax UID): 0xC000
- unreadable or truncated (a value or the encapsulated pixel data runs past the end of the file): 0xC000
- a required UID (SOP Class, SOP Instance, Study, Series) missing or not a valid UID: 0xA900
Everything here is synchronous and CPU-bound: the service runs it in a worker thread.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from services.imaging.index_json import (
    BULK_PREFIX,
    PIXEL_TAGS,
    UNDEFINED_LENGTH,
    clean_nul,
    dataset_json,
    dictionary_VR_or_un,
    element_length,
    json_text,
)

FAILURE_CANNOT_UNDERSTAND = 0xC000
FAILURE_DOES_NOT_MATCH_SOP_CLASS = 0xA900

UID_PATTERN = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
DEFLATED = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"}

REQUIRED_UIDS = (
    (0x00080016, "SOP Class UID (0008,0016)"),
    (0x00080018, "SOP Instance UID (0008,0018)"),
    (0x0020000D, "Study Instance UID (0020,000D)"),
    (0x0020000E, "Series Instance UID (0020,000E)"),
)

# Attributes kept at study level (Patient and General Study modules, Patient Study module) and at series
# level (General Series, General Equipment, Frame of Reference): what QIDO-RS answers and includefield adds.
STUDY_TAGS = frozenset({
    "00080005", "00080020", "00080030", "00080050", "00080051", "00080056", "00080090", "00080201",
    "00081030", "00081032", "00081048", "00081060", "00081080", "00081110", "0020000D", "00200010",
    "00100010", "00100020", "00100021", "00100022", "00100024", "00100030", "00100032", "00100040",
    "00101000", "00101001", "00101002", "00101010", "00101020", "00101030", "00102160", "00104000",
    "00102000", "00102110", "001021B0", "00321032", "00321033", "00321060", "00401001",
})
SERIES_TAGS = frozenset({
    "00080005", "00080021", "00080031", "00080060", "00080070", "00080080", "00081010", "0008103E",
    "00081040", "00081050", "00081070", "00081090", "00180015", "00181030", "00185100", "0020000E",
    "00200011", "00200052", "00200060", "00400244", "00400245", "00400253", "00400254", "00400275",
    "00080201",
})

log = logging.getLogger("telehealth.imaging.index")


class InvalidInstance(Exception):
    """The file cannot be archived: ``failure_reason`` is the PS3.18 code, ``detail`` says why."""

    def __init__(self, failure_reason: int, detail: str):
        super().__init__(detail)
        self.failure_reason = failure_reason
        self.detail = detail


@dataclass
class PatientName:
    """A PN value split into its alphabetic, ideographic and phonetic groups, normalised for matching."""

    raw: str = ""
    alpha: str = ""
    ideographic: str = ""
    phonetic: str = ""

    @property
    def search(self) -> str:
        return "=".join(g for g in (self.alpha, self.ideographic, self.phonetic) if g)


@dataclass
class ParsedInstance:
    transfer_syntax_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    patient_id: str = ""
    issuer: str = ""
    patient_name: PatientName = field(default_factory=PatientName)
    birth_date: date | None = None
    sex: str = ""
    study_date: date | None = None
    study_time: time | None = None
    accession_number: str = ""
    study_id: str = ""
    study_description: str = ""
    referring_search: str = ""
    modality: str = ""
    series_number: int | None = None
    series_description: str = ""
    performed_start_date: date | None = None
    instance_number: int | None = None
    number_of_frames: int | None = None
    pixel_data_offset: int | None = None
    pixel_data_length: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def study_attributes(self) -> dict[str, Any]:
        return {k: v for k, v in self.metadata.items() if k in STUDY_TAGS}

    @property
    def series_attributes(self) -> dict[str, Any]:
        return {k: v for k, v in self.metadata.items() if k in SERIES_TAGS}

    @property
    def patient_key(self) -> str:
        if self.patient_id:
            return f"{self.patient_id}|{self.issuer}"
        return f"~{self.patient_name.raw}|{self.birth_date or ''}"

    def metadata_json(self) -> str:
        return json_text(self.metadata)


# -- pydicom's warnings, per thread ---------------------------------------------------------------------------

class _Collector(logging.Handler):
    """Keeps pydicom's warnings of the current thread while a parse runs (EOF before a delimiter...)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        sink = getattr(self.local, "sink", None)
        if sink is not None:
            sink.append(record.getMessage())


_COLLECTOR = _Collector()
_PYDICOM_LOG = logging.getLogger("pydicom")
_PYDICOM_LOG.addHandler(_COLLECTOR)


# -- values ---------------------------------------------------------------------------------------------------

def valid_uid(value: str) -> bool:
    return 0 < len(value) <= 64 and bool(UID_PATTERN.match(value))


def normalize_name_group(group: str) -> str:
    """Lower-case, components stripped, trailing empty components dropped: 'WANG^XiaoDong^^' -> 'wang^xiaodong'."""
    parts = [p.strip() for p in group.split("^")]
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts).lower()


def split_person_name(value: str) -> PatientName:
    groups = ([*value.split("="), "", "", ""])[:3]
    return PatientName(value, *(normalize_name_group(g) for g in groups))


def pn_text(element: dict[str, Any] | None) -> str:
    """A DICOM JSON PN element back to 'Alphabetic=Ideographic=Phonetic' (first value)."""
    values = (element or {}).get("Value") or []
    if not values or not isinstance(values[0], dict):
        return ""
    v = values[0]
    text = "=".join([v.get("Alphabetic", ""), v.get("Ideographic", ""), v.get("Phonetic", "")])
    return text.rstrip("=")


def parse_da(value: str) -> date | None:
    digits = re.sub(r"[^0-9]", "", value or "")
    if len(digits) != 8:
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def parse_tm(value: str) -> time | None:
    text = (value or "").strip().replace(":", "")
    m = re.match(r"^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$", text)
    if not m:
        return None
    try:
        return time(int(m.group(1)), int(m.group(2) or 0), min(int(m.group(3) or 0), 59),
                    int((m.group(4) or "0").ljust(6, "0")))
    except ValueError:
        return None


def parse_int(value: Any) -> int | None:
    try:
        number = int(str(value).strip().split(".")[0])
    except (TypeError, ValueError):
        return None
    return number if -(2**31) <= number < 2**31 else None


def first_value(metadata: dict[str, Any], tag: str) -> Any:
    values = (metadata.get(tag) or {}).get("Value") or []
    return values[0] if values else None


def text_value(metadata: dict[str, Any], tag: str) -> str:
    value = first_value(metadata, tag)
    return str(value).strip() if value is not None and not isinstance(value, dict) else ""


# -- the parse ------------------------------------------------------------------------------------------------

def _check_preamble(source: Path | bytes) -> None:
    if isinstance(source, bytes):
        head = source[:132]
    else:
        with source.open("rb") as fh:
            head = fh.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        raise InvalidInstance(FAILURE_CANNOT_UNDERSTAND,
                              "not a DICOM Part-10 file (no preamble and 'DICM' prefix)")


def _check_eof(warnings: list[str]) -> None:
    eof = [w for w in warnings if "End of file" in w or "delimiter" in w]
    if eof:
        raise InvalidInstance(FAILURE_CANNOT_UNDERSTAND, "truncated file: it ends before a sequence delimiter")


def _check_complete(ds: Dataset, size: int, deflated: bool) -> None:
    if deflated:
        return
    for tag in ds.keys():
        raw = ds.get_item(tag, keep_deferred=True)
        if not isinstance(raw, RawDataElement) or raw.length == UNDEFINED_LENGTH:
            continue
        if raw.value is None and raw.value_tell is not None and raw.value_tell + raw.length > size:
            raise InvalidInstance(
                FAILURE_CANNOT_UNDERSTAND,
                f"truncated file: ({tag.group:04X},{tag.element:04X}) ends "
                f"{raw.value_tell + raw.length - size} bytes past the end of the file")
        if isinstance(raw.value, bytes) and len(raw.value) < raw.length:
            raise InvalidInstance(
                FAILURE_CANNOT_UNDERSTAND,
                f"truncated file: ({tag.group:04X},{tag.element:04X}) is cut short")


def _read(source: Path | bytes) -> tuple[Dataset, list[str]]:
    sink: list[str] = []
    if not _PYDICOM_LOG.isEnabledFor(logging.WARNING):  # the truncation check reads pydicom's warnings
        _PYDICOM_LOG.setLevel(logging.WARNING)
    _COLLECTOR.local.sink = sink
    try:
        ds = pydicom.dcmread(io.BytesIO(source) if isinstance(source, bytes) else source, defer_size=1024)
        for tag in ds.keys():  # sequences are parsed now, so their warnings land in this parse's sink
            raw = ds.get_item(tag, keep_deferred=True)
            if (raw.VR or "") == "SQ" or (isinstance(raw, RawDataElement) and raw.VR is None
                                          and dictionary_VR_or_un(raw.tag) == "SQ"):
                _ = ds[tag].value
    except InvalidInstance:
        raise
    except Exception as exc:  # pydicom raises many kinds on malformed input
        reason = str(exc).split("\n")[0][:300] or type(exc).__name__
        raise InvalidInstance(FAILURE_CANNOT_UNDERSTAND, f"not a readable DICOM file: {reason}") from exc
    finally:
        _COLLECTOR.local.sink = None
    return ds, sink


def _required_uids(ds: Dataset) -> list[str]:
    found: list[str] = []
    for tag, label in REQUIRED_UIDS:
        try:
            value = str(ds.get(tag).value if tag in ds else "").strip().rstrip("\x00").strip()
        except Exception:
            value = ""
        if not value:
            raise InvalidInstance(FAILURE_DOES_NOT_MATCH_SOP_CLASS, f"missing {label}")
        if not valid_uid(value):
            raise InvalidInstance(FAILURE_DOES_NOT_MATCH_SOP_CLASS,
                                  f"invalid {label}: not digits and dots of at most 64 characters")
        found.append(value)
    return found


def bulk_uri_factory(study: str, series: str, sop: str) -> Callable[[str], str]:
    base = f"{BULK_PREFIX}/studies/{study}/series/{series}/instances/{sop}/bulkdata/"
    return lambda tag_path: base + tag_path


def parse_instance(source: Path | bytes, *, bulk_data_threshold: int = 1024) -> ParsedInstance:
    """Validate the Part-10 file at ``source`` (a path, or the file's bytes held in memory) and extract what
    the index keeps; raises InvalidInstance."""
    size = len(source) if isinstance(source, bytes) else source.stat().st_size
    _check_preamble(source)
    ds, warnings = _read(source)
    meta = getattr(ds, "file_meta", None)
    ts = str(getattr(meta, "TransferSyntaxUID", "") or "").strip().rstrip("\x00") if meta is not None else ""
    if not ts:
        raise InvalidInstance(FAILURE_CANNOT_UNDERSTAND,
                              "no Transfer Syntax UID (0002,0010) in the File Meta Information")
    if not valid_uid(ts):
        raise InvalidInstance(FAILURE_CANNOT_UNDERSTAND, "the Transfer Syntax UID (0002,0010) is not a valid UID")
    _check_eof(warnings)
    group_length = getattr(meta, "FileMetaInformationGroupLength", None)
    if isinstance(group_length, int) and 132 + 12 + group_length > size:
        raise InvalidInstance(FAILURE_CANNOT_UNDERSTAND, "truncated file: it ends inside the File Meta Information")
    if len(ds) == 0:
        raise InvalidInstance(FAILURE_CANNOT_UNDERSTAND, "no data set after the File Meta Information")
    _check_complete(ds, size, ts in DEFLATED)
    sop_class, sop, study, series = _required_uids(ds)
    pixel = ds.get_item(0x7FE00010, keep_deferred=True) if 0x7FE00010 in ds else None
    encapsulated = pixel is not None and element_length(pixel) == UNDEFINED_LENGTH
    metadata = dataset_json(ds, bulk_uri_factory(study, series, sop), bulk_data_threshold, encapsulated=encapsulated)
    if "\\u0000" in json_text(metadata) or "\x00" in json_text(metadata):
        metadata = clean_nul(metadata)
    parsed = ParsedInstance(ts, sop_class, sop, study, series, metadata=metadata)
    _fill_index_values(parsed, metadata)
    if any(t in ds for t in PIXEL_TAGS):
        parsed.number_of_frames = max(1, parse_int(text_value(metadata, "00280008")) or 1)
    if (isinstance(pixel, RawDataElement) and not encapsulated and ts not in DEFLATED
            and pixel.value_tell is not None):
        parsed.pixel_data_offset, parsed.pixel_data_length = int(pixel.value_tell), int(pixel.length)
    return parsed


def _fill_index_values(p: ParsedInstance, m: dict[str, Any]) -> None:
    p.patient_id = text_value(m, "00100020")
    p.issuer = text_value(m, "00100021")
    p.patient_name = split_person_name(pn_text(m.get("00100010")))
    p.birth_date = parse_da(text_value(m, "00100030"))
    p.sex = text_value(m, "00100040")[:16]
    p.study_date = parse_da(text_value(m, "00080020"))
    p.study_time = parse_tm(text_value(m, "00080030"))
    p.accession_number = text_value(m, "00080050")
    p.study_id = text_value(m, "00200010")
    p.study_description = text_value(m, "00081030")
    p.referring_search = split_person_name(pn_text(m.get("00080090"))).search
    p.modality = text_value(m, "00080060")[:16]
    p.series_number = parse_int(first_value(m, "00200011"))
    p.series_description = text_value(m, "0008103E")
    p.performed_start_date = parse_da(text_value(m, "00400244"))
    p.instance_number = parse_int(first_value(m, "00200013"))
