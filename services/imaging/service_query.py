"""QIDO-RS (PS3.18 10.6): search for studies, series and instances the caller may see, as DICOM JSON.

Answers come from the index alone (study and series attributes kept at store time, each instance's DICOM
JSON), never from the files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

import orjson
from pydicom.datadict import dictionary_VR, tag_for_keyword

from common.auth import SYSTEM_USER, Principal, system_principal
from common.errors import BadRequest, NotFound
from services.imaging import matching as m
from services.imaging import repository_query as rq
from services.imaging.index_json import BULK_PREFIX
from services.imaging.matching import Condition
from services.imaging.service import Archive, require_reader, visible_facilities

Level = Literal["study", "series", "instance"]

STUDY_DEFAULT = ("00080005", "00080020", "00080030", "00080050", "00080056", "00080061", "00080090", "00080201",
                 "00081190", "00100010", "00100020", "00100030", "00100040", "0020000D", "00200010", "00201206",
                 "00201208")
SERIES_DEFAULT = ("00080005", "00080060", "00080201", "0008103E", "00081190", "0020000E", "00200011", "00201209",
                  "00400244", "00400245", "00400275")
INSTANCE_DEFAULT = ("00080005", "00080016", "00080018", "00080056", "00080201", "00081190", "00200013", "00280010",
                    "00280011", "00280100", "00280008")
RESERVED = frozenset({"limit", "offset", "fuzzymatching", "includefield", "orderby"})


@dataclass
class QidoQuery:
    level: Level
    study_uid: str | None = None
    series_uid: str | None = None
    matches: dict[str, str] = field(default_factory=dict)   # tag -> value (empty: return it)
    include: set[str] | None = field(default_factory=set)   # None: includefield=all
    limit: int = 100
    offset: int = 0
    fuzzy: bool = False
    limit_given: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class QidoResult:
    body: bytes
    warnings: list[str]


def tag_of(key: str) -> str | None:
    """'PatientName' or '00100010' -> '00100010'; None when unknown or a sequence path."""
    if len(key) == 8 and all(c in "0123456789abcdefABCDEF" for c in key):
        return key.upper()
    number = tag_for_keyword(key)
    return f"{number:08X}" if number is not None else None


def parse_query(level: Level, params: Sequence[tuple[str, str]], *, study_uid: str | None = None,
                series_uid: str | None = None, default_limit: int = 100, max_limit: int = 1000) -> QidoQuery:
    q = QidoQuery(level, study_uid, series_uid, limit=default_limit)
    for key, value in params:
        name = key.strip()
        lower = name.lower()
        if lower == "limit":
            q.limit, q.limit_given = _int_param("limit", value, 1, max_limit), True
        elif lower == "offset":
            q.offset = _int_param("offset", value, 0, 10**9)
        elif lower == "fuzzymatching":
            q.fuzzy = value.strip().lower() == "true"
        elif lower == "includefield":
            for item in value.split(","):
                item = item.strip()
                if item.lower() == "all":
                    q.include = None
                elif item:
                    tag = tag_of(item)
                    if tag is None:
                        q.warnings.append(f"includefield {item} is not a known attribute and was ignored")
                    elif q.include is not None:
                        q.include.add(tag)
        elif lower in RESERVED:
            continue
        else:
            tag = tag_of(name)
            if tag is None:
                raise BadRequest(f"unknown query key {name!r}: use a DICOM keyword or an 8-digit tag")
            q.matches[tag] = value
    return q


def _int_param(name: str, value: str, lo: int, hi: int) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise BadRequest(f"{name} must be an integer") from exc
    if number < lo:
        raise BadRequest(f"{name} must be at least {lo}")
    return min(number, hi)


STUDY_KEYS = {"0020000D", "00100020", "00100010", "00080020", "00080030", "00080050", "00080061", "00080090",
              "00081030", "00200010", "00100030", "00100040"}
SERIES_KEYS = {"0020000E", "00080060", "00200011", "0008103E", "00400244"}
INSTANCE_KEYS = {"00080018", "00080016", "00200013"}


def _study_condition(tag: str, value: str, fuzzy: bool) -> Condition:
    if tag == "0020000D":
        return m.list_condition("s.study_instance_uid", value)
    if tag == "00100020":
        return m.text_condition("s.patient_id", value, c_collated=True)
    if tag == "00100010":
        return m.patient_name_condition(value, fuzzy)
    if tag == "00080020":
        return m.date_condition("s.study_date", value, "StudyDate")
    if tag == "00080030":
        return m.time_condition("s.study_time", value, "StudyTime")
    if tag == "00080050":
        return m.text_condition("s.accession_number", value, c_collated=True)
    if tag == "00080061":
        return Condition("s.modalities && {0}::text[]", (m.uid_list(value),))
    if tag == "00080090":
        return m.person_search_condition("s.referring_search", value, fuzzy)
    if tag == "00081030":
        return m.text_condition("s.description_search", value, lower=True)
    if tag == "00200010":
        return m.text_condition("s.study_id", value, c_collated=True)
    if tag == "00100030":
        return m.date_condition("s.patient_birth_date", value, "PatientBirthDate")
    return m.text_condition("s.patient_sex", value)  # 00100040


def _series_condition(tag: str, value: str) -> Condition:
    if tag == "0020000E":
        return m.list_condition("se.series_instance_uid", value)
    if tag == "00080060":
        return m.list_condition("se.modality", value)
    if tag == "00200011":
        return m.int_condition("se.series_number", value, "SeriesNumber")
    if tag == "0008103E":
        return m.text_condition("lower(se.series_description)", value, lower=True)
    return m.date_condition("se.performed_start_date", value, "PerformedProcedureStepStartDate")


def _instance_condition(tag: str, value: str) -> Condition:
    if tag == "00080018":
        return m.list_condition("i.sop_instance_uid", value)
    if tag == "00080016":
        return m.list_condition("i.sop_class_uid", value)
    if tag == "00200013":
        return m.int_condition("i.instance_number", value, "InstanceNumber")
    # Any other attribute of the instance: its first value, from the stored DICOM JSON (no index).
    return m.text_condition(f"(i.metadata -> '{tag}' -> 'Value' ->> 0)", value)


def conditions(q: QidoQuery) -> list[Condition]:
    """The SQL conditions of the query's matching keys at its level (others: a Warning header)."""
    out: list[Condition] = []
    if q.study_uid is not None:
        out.append(Condition("s.study_instance_uid = {0}", (q.study_uid,)))
    if q.series_uid is not None:
        out.append(Condition("se.series_instance_uid = {0}", (q.series_uid,)))
    for tag, value in q.matches.items():
        if value == "":
            continue  # universal matching: return the attribute
        if tag in STUDY_KEYS:
            out.append(_study_condition(tag, value, q.fuzzy))
        elif tag in SERIES_KEYS and q.level in ("series", "instance"):
            out.append(_series_condition(tag, value))
        elif q.level == "instance" and (tag in INSTANCE_KEYS or tag[:4] not in ("7FE0", "0002")):
            out.append(_instance_condition(tag, value))
        else:
            q.warnings.append(f"matching on {tag} is not supported at {q.level} level; the key was ignored")
    return out


async def search(archive: Archive, principal: Principal, q: QidoQuery, base: str) -> QidoResult:
    """Run ``q`` for ``principal``; ``base`` is the DICOMweb root URL for Retrieve URLs."""
    require_reader(principal)
    visible = visible_facilities(principal)
    conds = conditions(q)
    fetch = q.limit + 1
    # Studies opened by a live grant (a consult, a share to a facility or user) are searched too. Row-level
    # security scopes a transaction to the caller's facilities, so with grants the search runs as the
    # platform, and the visibility clause (own facilities OR granted study ids) is the wall.
    granted: list[UUID] = []
    if principal.is_clinical and not principal.system and principal.user_id != SYSTEM_USER:  # not a DIMSE AE
        async with archive.db.transaction(system_principal()) as conn:
            granted = await rq.granted_study_refs(conn, principal.facility_id, principal.user_id)
    async with archive.db.transaction(system_principal() if granted else principal) as conn:
        if q.series_uid is not None and q.study_uid is not None:
            if not await rq.series_visible(conn, q.study_uid, q.series_uid, visible, granted):
                raise NotFound("no such series")
        elif q.study_uid is not None and not await rq.study_visible(conn, q.study_uid, visible, granted):
            raise NotFound("no such study")
        if q.level == "study":
            rows = await rq.search_studies(conn, visible, conds, fetch, q.offset, granted)
        elif q.level == "series":
            rows = await rq.search_series(conn, visible, conds, fetch, q.offset, granted)
        else:
            rows = await rq.search_instances(conn, visible, conds, _instance_tags(q), fetch, q.offset, granted)
    if len(rows) > q.limit:
        rows = rows[:q.limit]
        if not q.limit_given:
            q.warnings.append("The number of results exceeded the maximum supported by the server. Additional"
                              " results can be requested.")
    build = {"study": _study_json, "series": _series_json, "instance": _instance_json}[q.level]
    items = [build(q, dict(r), base) for r in rows]
    body = orjson.dumps(items, option=orjson.OPT_SORT_KEYS)
    return QidoResult(body.replace(b'"' + BULK_PREFIX.encode(), b'"' + base.encode()), q.warnings)


def _wanted(q: QidoQuery, defaults: Sequence[str]) -> set[str] | None:
    if q.include is None:
        return None
    return set(defaults) | q.include | set(q.matches)


def _select(attrs: dict[str, Any], wanted: set[str] | None, defaults: Sequence[str]) -> dict[str, Any]:
    out = dict(attrs) if wanted is None else {k: v for k, v in attrs.items() if k in wanted}
    for tag in defaults:  # Type 2 in the answer: present, empty when unknown
        if tag not in out:
            out[tag] = {"vr": _vr(tag)}
    return out


def _vr(tag: str) -> str:
    try:
        vr = str(dictionary_VR(int(tag, 16)))
    except KeyError:
        return "UN"
    return vr.split(" or ")[0]


def _element(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def _study_part(row: dict[str, Any], text: str, base: str, wanted: set[str] | None) -> dict[str, Any]:
    attrs = orjson.loads(text)
    attrs["00080061"] = _element("CS", *sorted(row["modalities"]))
    attrs["00201206"] = _element("IS", row["num_series"])
    attrs["00201208"] = _element("IS", row["study_instances"] if "study_instances" in row else row["num_instances"])
    attrs["00080056"] = _element("CS", "ONLINE")
    attrs["00081190"] = _element("UR", f"{base}/studies/{row['study_instance_uid']}")
    return _select(attrs, wanted, STUDY_DEFAULT)


def _study_json(q: QidoQuery, row: dict[str, Any], base: str) -> dict[str, Any]:
    return _study_part(row, row["attributes"], base, _wanted(q, STUDY_DEFAULT))


def _series_json(q: QidoQuery, row: dict[str, Any], base: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if q.study_uid is None:  # not scoped to a study: the study's attributes too (PS3.18 10.6.3.3)
        out.update(_study_part(row, row["study_attributes"], base, _wanted(q, STUDY_DEFAULT)))
    attrs = orjson.loads(row["attributes"])
    attrs["00201209"] = _element("IS", row["num_instances"])
    attrs["0020000D"] = _element("UI", row["study_instance_uid"])
    attrs["00080056"] = _element("CS", "ONLINE")
    attrs["00081190"] = _element(
        "UR", f"{base}/studies/{row['study_instance_uid']}/series/{row['series_instance_uid']}")
    out.update(_select(attrs, _wanted(q, SERIES_DEFAULT), SERIES_DEFAULT))
    return out


def _instance_defaults(q: QidoQuery) -> tuple[str, ...]:
    tags: tuple[str, ...] = (*INSTANCE_DEFAULT, "0020000D", "0020000E")
    if q.series_uid is None:
        tags += SERIES_DEFAULT
    if q.study_uid is None:
        tags += STUDY_DEFAULT
    return tuple(dict.fromkeys(tags))


def _instance_tags(q: QidoQuery) -> list[str] | None:
    wanted = _wanted(q, _instance_defaults(q))
    return None if wanted is None else sorted(wanted)


def _instance_json(q: QidoQuery, row: dict[str, Any], base: str) -> dict[str, Any]:
    attrs = orjson.loads(row["attributes"])
    attrs["00080056"] = _element("CS", "ONLINE")
    attrs["00081190"] = _element("UR", f"{base}/studies/{row['study_instance_uid']}/series/"
                                 f"{row['series_instance_uid']}/instances/{row['sop_instance_uid']}")
    return _select(attrs, _wanted(q, _instance_defaults(q)), _instance_defaults(q))
