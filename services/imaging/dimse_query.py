"""C-FIND, C-GET and C-MOVE answered from the index: a DIMSE identifier becomes a QIDO query
(services/imaging/service_query.py), run for the calling AE's facility; matches come back as datasets holding
the requested keys. Retrieves list the matching instances and read their originals from object storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from common.auth import Principal
from common.errors import AppError
from services.imaging import repository_retrieve as rr
from services.imaging.repository_retrieve import StoredInstance
from services.imaging.service import Archive, visible_facilities
from services.imaging.service_query import Level, QidoQuery, search

PAGE = 1000
LEVELS: dict[str, Level] = {"PATIENT": "study", "STUDY": "study", "SERIES": "series", "IMAGE": "instance"}
# Not matching keys: the level itself, the character set, and what the SCP fills in.
_SKIP = {0x00080052, 0x00080005, 0x00080054, 0x00080056}
STATUS_SUCCESS, STATUS_PENDING = 0x0000, 0xFF00
STATUS_IDENTIFIER_INVALID = 0xA900  # Identifier does not match SOP Class
STATUS_UNABLE = 0xC000               # Unable to process


class BadIdentifier(Exception):
    """The identifier cannot be answered (no or unknown Query/Retrieve Level)."""


def _value(elem: Any) -> str | None:
    """A matching value as QIDO text (lists joined with backslash); None for universal matching."""
    value = elem.value
    if value is None or value == "" or elem.VR == "SQ":
        return None
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value) or None
    if isinstance(value, bytes):
        return None
    return str(value)


def level_of(identifier: Dataset) -> str:
    level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    if level not in LEVELS:
        raise BadIdentifier(f"Query/Retrieve Level {level or '(none)'} is not PATIENT, STUDY, SERIES or IMAGE")
    return level


def to_query(identifier: Dataset, level: str, offset: int = 0) -> QidoQuery:
    q = QidoQuery(LEVELS[level], limit=PAGE, offset=offset, limit_given=True)
    include: set[str] = set()
    for elem in identifier:
        if elem.tag in _SKIP or elem.tag.group in (0x0000, 0x0002) or elem.tag.is_private:
            continue
        tag = f"{int(elem.tag):08X}"
        include.add(tag)
        value = _value(elem)
        if value is not None:
            q.matches[tag] = value
        elif elem.VR != "SQ":
            q.matches.setdefault(tag, "")
    q.include = include
    return q


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    """DICOM JSON without bulk data references and sequences (not returned by C-FIND)."""
    return {k: v for k, v in item.items()
            if isinstance(v, dict) and "BulkDataURI" not in v and "InlineBinary" not in v and v.get("vr") != "SQ"}


async def _search_all(archive: Archive, principal: Principal, identifier: Dataset, level: str,
                      cap: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = 0
    while len(out) < cap:
        q = to_query(identifier, level, offset)
        try:
            result = await search(archive, principal, q, "")
        except AppError as exc:  # a malformed date or range: nothing matches such a key
            raise BadIdentifier(exc.detail) from exc
        page = orjson.loads(result.body)
        out.extend(page)
        if len(page) < PAGE:
            break
        offset += PAGE
    return out[:cap]


async def find(archive: Archive, principal: Principal, identifier: Dataset, *, ae_title: str,
               cap: int) -> list[Dataset]:
    """C-FIND: one response identifier per match, holding the requested keys (empty when unknown)."""
    level = level_of(identifier)
    items = await _search_all(archive, principal, identifier, level, cap)
    answers: list[Dataset] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        found = Dataset.from_json(_clean(item))
        if level == "PATIENT":
            key = (str(found.get("PatientID", "")), str(found.get("PatientName", "")))
            if key in seen:
                continue
            seen.add(key)
        answers.append(_answer(identifier, found, level, ae_title))
    return answers


def _answer(identifier: Dataset, found: Dataset, level: str, ae_title: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # the index keeps Unicode: answers are UTF-8
    ds.QueryRetrieveLevel = level
    for elem in identifier:
        if elem.tag in (0x00080052, 0x00080005) or elem.tag.group in (0x0000, 0x0002):
            continue
        if elem.tag == 0x00080054:
            ds.RetrieveAETitle = ae_title
        elif elem.tag == 0x00080056:
            ds.InstanceAvailability = "ONLINE"
        elif elem.tag in found and elem.VR != "SQ":
            ds[elem.tag] = found[elem.tag]
        else:
            ds.add_new(elem.tag, elem.VR, None)
    return ds


_RETRIEVE_KEYS = {"PATIENT": ("PatientID",), "STUDY": ("StudyInstanceUID",),
                  "SERIES": ("StudyInstanceUID", "SeriesInstanceUID"),
                  "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}


async def instances_to_retrieve(archive: Archive, principal: Principal, identifier: Dataset,
                                cap: int) -> list[StoredInstance]:
    """C-GET / C-MOVE: the visible instances the identifier's unique keys select (hierarchical retrieve)."""
    level = level_of(identifier)
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    for keyword in _RETRIEVE_KEYS[level]:
        value = _value(identifier[keyword]) if keyword in identifier else None
        if value is None:
            raise BadIdentifier(f"a {level} level retrieve needs {keyword}")
        setattr(query, keyword, identifier[keyword].value)
    query.SOPInstanceUID = query.get("SOPInstanceUID", "")
    items = await _search_all(archive, principal, query, "IMAGE", cap)
    wanted: dict[str, set[str]] = {}
    for item in items:
        study = item["0020000D"]["Value"][0]
        wanted.setdefault(study, set()).add(item["00080018"]["Value"][0])
    out: list[StoredInstance] = []
    visible = visible_facilities(principal)
    async with archive.db.transaction(principal) as conn:
        for study, sops in wanted.items():
            out.extend(i for i in await rr.instances(conn, visible, study) if i.sop_instance_uid in sops)
    return out


def sop_classes(instances: Iterable[StoredInstance]) -> list[tuple[str, str]]:
    """Distinct (SOP Class, stored transfer syntax) pairs, for the C-MOVE association's contexts."""
    return sorted({(i.sop_class_uid, i.transfer_syntax_uid) for i in instances})
