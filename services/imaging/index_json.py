"""The DICOM JSON model (PS3.18 Annex F) of a dataset read with deferred values, without loading bulk data.

Binary values longer than the threshold, and all pixel data, become BulkDataURIs relative to the DICOMweb
root (``$DW$/studies/.../bulkdata/<tag path>``); answers replace ``$DW$`` with the caller's base URL. Nested
bulk data is addressed by its tag path through sequences (``SEQ/item/TAG``), which ``walk_bulk_path`` follows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float Pixel Data, Double Float Pixel Data
BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW", "US or SS or OW"})
# Stored BulkDataURIs are relative to the DICOMweb root; responses put the caller's base URL in its place.
BULK_PREFIX = "$DW$"

log = logging.getLogger("telehealth.imaging.index")


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def clean_nul(value: Any) -> Any:
    """PostgreSQL text and jsonb refuse NUL: drop it from every string."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {k: clean_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_nul(v) for v in value]
    return value


def _vr_of(raw: RawDataElement | DataElement, ds: Dataset, encapsulated: bool) -> str:
    vr = raw.VR or dictionary_VR_or_un(raw.tag)
    if raw.tag == 0x7FE00010 and (encapsulated or vr == "OB or OW"):
        return "OB" if encapsulated or int(ds.get("BitsAllocated", 16) or 16) <= 8 else "OW"
    if " or " in vr:
        return "OW" if "OW" in vr else vr.split(" or ")[0]
    return vr


def dictionary_VR_or_un(tag: BaseTag) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def element_length(raw: RawDataElement | DataElement) -> int:
    if isinstance(raw, RawDataElement):
        return int(raw.length)
    value = raw.value
    if raw.is_undefined_length:
        return UNDEFINED_LENGTH
    return len(value) if isinstance(value, bytes | bytearray) else 0


def dataset_json(ds: Dataset, bulk_uri: Callable[[str], str], threshold: int, *, path: str = "",
                 encapsulated: bool = False) -> dict[str, Any]:
    """``ds`` as DICOM JSON; binary values over ``threshold`` (and all pixel data) become BulkDataURIs."""
    out: dict[str, Any] = {}
    for tag in ds.keys():
        if tag.element == 0 or tag.group in (0x0000, 0x0002):  # group lengths, command and file meta groups
            continue
        key = f"{tag:08X}"
        raw = ds.get_item(tag, keep_deferred=True)
        vr = _vr_of(raw, ds, encapsulated and not path)
        here = f"{path}/{key}" if path else key
        if vr in BULK_VRS and (tag in PIXEL_TAGS or element_length(raw) > threshold):
            out[key] = {"vr": vr, "BulkDataURI": bulk_uri(here)}
            continue
        try:
            elem = ds[tag]
            if elem.VR == "SQ":
                items = [dataset_json(item, bulk_uri, threshold, path=f"{here}/{i}")
                         for i, item in enumerate(elem.value or [])]
                out[key] = {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
            else:
                out[key] = elem.to_json_dict(None, 2**62)
        except Exception as exc:  # a value pydicom cannot convert: keep the element, without its value
            log.debug("element not converted to JSON", extra={"tag": key, "error_type": type(exc).__name__})
            out[key] = {"vr": vr if vr in _JSON_VRS else "UN"}
    return out


_JSON_VRS = frozenset({
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW",
    "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV",
})


def walk_bulk_path(ds: Dataset, tag_path: str) -> Iterator[Any]:
    """Follow 'SEQ/idx/.../TAG' through ``ds``; yields the element found (one) or nothing."""
    parts = tag_path.strip("/").split("/")
    node: Any = ds
    try:
        for i, part in enumerate(parts):
            if i % 2 == 0:
                tag = Tag(int(part, 16))
                if tag not in node:
                    return
                node = node[tag]
                if i < len(parts) - 1:
                    node = node.value
            else:
                node = node[int(part)]
    except (ValueError, IndexError, KeyError, TypeError):
        return
    if isinstance(node, DataElement):
        yield node
