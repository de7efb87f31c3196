"""HL7 v3 annotated ECG (FDA aECG, PORT_MT020001) reader, with lxml.

The first RHYTHM ``series`` is the signal: its first ``sequenceSet`` holds a time sequence
(TIME_ABSOLUTE GLIST_TS or TIME_RELATIVE GLIST_PQ: head + increment) and one SLIST_PQ per lead
(``value = origin + scale * digit``, units uV/mV/V) coded MDC_ECG_LEAD_*. A derived series (median
beats) becomes ``median_beats``. Global measurements (MDC_ECG_TIME_PD_*, MDC_ECG_ANGLE_*_FRONT,
MDC_ECG_HEART_RATE) come from the derived series' annotation set, falling back to the rhythm's; coded
rhythm / interpretation findings become statements; wave boundaries (P, QRS, T with time ROIs)
become annotations.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
from lxml import etree

from services.ecg.formats.model import (
    Annotation,
    Device,
    FormatError,
    MedianBeats,
    Recording,
    clean_text,
    put,
    stack_leads,
    unique_lead_names,
    unit_scale_to_mv,
)

NS = {"h": "urn:hl7-org:v3"}
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_MEASURES = {
    "MDC_ECG_HEART_RATE": "hr_bpm",
    "MDC_ECG_TIME_PD_RR": "rr_ms",
    "MDC_ECG_TIME_PD_PP": "pp_ms",
    "MDC_ECG_TIME_PD_P": "p_ms",
    "MDC_ECG_TIME_PD_PR": "pr_ms",
    "MDC_ECG_TIME_PD_QRS": "qrs_ms",
    "MDC_ECG_TIME_PD_QT": "qt_ms",
    "MDC_ECG_TIME_PD_QTC": "qtc_ms",
    "MDC_ECG_TIME_PD_QTCB": "qtcb_ms",
    "MDC_ECG_TIME_PD_QTCF": "qtcf_ms",
    "MDC_ECG_ANGLE_P_FRONT": "p_axis_deg",
    "MDC_ECG_ANGLE_QRS_FRONT": "qrs_axis_deg",
    "MDC_ECG_ANGLE_T_FRONT": "t_axis_deg",
}
_WAVES = {"MDC_ECG_WAVC_PWAVE": "P", "MDC_ECG_WAVC_QRSWAVE": "QRS", "MDC_ECG_WAVC_TWAVE": "T"}
_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def parse_ts(text: str | None) -> datetime | None:
    """HL7 TS (YYYYMMDDHHMMSS[.fff][+ZZZZ]) -> datetime, tz-aware when the offset is given."""
    if not text:
        return None
    match = re.fullmatch(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?", text.strip())
    if not match:
        return None
    y, mo, d, h, mi, s, frac, tz = match.groups()
    try:
        value = datetime(
            int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0), int((frac or "0").ljust(6, "0"))
        )
    except ValueError:
        return None
    if tz:
        sign = 1 if tz[0] == "+" else -1
        value = value.replace(tzinfo=timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5]))))
    return value


def _code(el: etree._Element | None) -> str:
    if el is None:
        return ""
    code = el.find("h:code", NS)
    return code.get("code", "") if code is not None else ""


def _sequence_set(seq_set: etree._Element) -> tuple[float, datetime | None, list[str], np.ndarray]:
    interval: float | None = None
    head: datetime | None = None
    names: list[str] = []
    columns: list[np.ndarray] = []
    for seq in seq_set.iterfind("h:component/h:sequence", NS):
        code = _code(seq)
        value = seq.find("h:value", NS)
        if value is None:
            continue
        if code.startswith("TIME_"):
            inc = value.find("h:increment", NS)
            if inc is None:
                raise FormatError(f"aECG {code} sequence has no increment (irregular sampling is not supported)")
            interval = float(inc.get("value", "nan")) * _SECONDS.get(inc.get("unit", "s"), float("nan"))
            if code == "TIME_ABSOLUTE":
                h = value.find("h:head", NS)
                head = parse_ts(h.get("value") if h is not None else None)
            continue
        if value.get(XSI_TYPE, "") != "SLIST_PQ":
            continue
        origin, scale = value.find("h:origin", NS), value.find("h:scale", NS)
        digits = value.findtext("h:digits", default="", namespaces=NS)
        if origin is None or scale is None:
            raise FormatError(f"aECG lead {code}: origin/scale missing")
        try:
            raw = np.array(digits.split(), dtype=np.float64)
            factor = float(scale.get("value", "nan")) * unit_scale_to_mv(scale.get("unit", ""))
            offset = float(origin.get("value", "nan")) * unit_scale_to_mv(
                origin.get("unit", "") or scale.get("unit", "")
            )
        except ValueError as exc:
            raise FormatError(f"aECG lead {code}: {exc}") from exc
        names.append(code[len("MDC_ECG_LEAD_") :] if code.startswith("MDC_ECG_LEAD_") else code)
        columns.append(raw * factor + offset)
    if interval is None or not interval > 0:
        raise FormatError("aECG sequence set has no valid sampling increment")
    names = unique_lead_names(names)
    return 1.0 / interval, head, names, stack_leads(columns, names)


def _measurements(aset: etree._Element | None, into: dict[str, Any]) -> None:
    if aset is None:
        return
    for ann in aset.iterfind("h:component/h:annotation", NS):
        key = _MEASURES.get(_code(ann).upper())
        value = ann.find("h:value", NS)
        if key is None or value is None or key in into:
            continue
        try:
            number = float(value.get("value", ""))
        except ValueError:
            continue
        unit = value.get("unit", "")
        if key.endswith("_ms") and unit in _SECONDS and unit != "ms":
            number = round(number * _SECONDS[unit] * 1000, 3)
        into[key] = round(number) if number == round(number) else number


def _findings(aset: etree._Element | None) -> list[str]:
    out: list[str] = []
    if aset is None:
        return out
    for ann in aset.iter("{urn:hl7-org:v3}annotation"):
        code = _code(ann)
        value = ann.find("h:value", NS)
        if value is None:
            continue
        if code == "MDC_ECG_RHY" or code.startswith("MDC_ECG_INTERPRETATION"):
            text = value.get("displayName") or clean_text(value.text) or value.get("code")
            if text and text not in out:
                out.append(text)
    return out


def _wave_marks(aset: etree._Element | None, t0: datetime | None, fs: float) -> list[Annotation]:
    marks: list[Annotation] = []
    if aset is None or t0 is None:
        return marks
    for ann in aset.iter("{urn:hl7-org:v3}annotation"):
        value = ann.find("h:value", NS)
        label = _WAVES.get(value.get("code", "")) if value is not None else None
        if label is None:
            continue
        bound = ann.find("h:support/h:supportingROI/h:component/h:boundary", NS)
        if bound is None or _code(bound) != "TIME_ABSOLUTE":
            continue
        low, high = bound.find("h:value/h:low", NS), bound.find("h:value/h:high", NS)
        t_low = parse_ts(low.get("value") if low is not None else None)
        t_high = parse_ts(high.get("value") if high is not None else None)
        if t_low is None:
            continue
        start = round((t_low - t0).total_seconds() * fs)
        end = round((t_high - t0).total_seconds() * fs) if t_high is not None else None
        marks.append(Annotation(sample=start, label=label, end_sample=end, aux=value.get("code", "")))
    return marks


def _patient(root: etree._Element) -> dict[str, Any]:
    patient: dict[str, Any] = {}
    subject = root.find(".//h:trialSubject", NS)
    if subject is None:
        return patient
    sid = subject.find("h:id", NS)
    put(patient, "id", sid.get("extension") if sid is not None else None)
    person = subject.find("h:subjectDemographicPerson", NS)
    if person is not None:
        put(patient, "name", clean_text(" ".join(person.findtext("h:name", default="", namespaces=NS).split())))
        gender = person.find("h:administrativeGenderCode", NS)
        put(patient, "sex", {"M": "M", "F": "F"}.get(gender.get("code", "") if gender is not None else ""))
        birth = person.find("h:birthTime", NS)
        when = parse_ts(birth.get("value") if birth is not None else None)
        if when is not None:
            patient["birth_date"] = date(when.year, when.month, when.day)
    return patient


def read_hl7_aecg(path: str | Path) -> Recording:
    try:
        root = etree.parse(
            str(path), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
        ).getroot()
    except etree.XMLSyntaxError as exc:
        raise FormatError(f"malformed XML: {exc}") from exc
    if etree.QName(root).localname != "AnnotatedECG":
        raise FormatError(f"not an HL7 aECG document (root element {etree.QName(root).localname})")
    series = [s for s in root.iterfind("h:component/h:series", NS)]
    if not series:
        raise FormatError("aECG document has no series")
    rhythm = next((s for s in series if _code(s) == "RHYTHM"), series[0])
    seq_set = rhythm.find("h:component/h:sequenceSet", NS)
    if seq_set is None:
        raise FormatError("aECG rhythm series has no sequenceSet")
    fs, t0, names, signal = _sequence_set(seq_set)
    if t0 is None:
        low = rhythm.find("h:effectiveTime/h:low", NS)
        t0 = parse_ts(low.get("value") if low is not None else None)

    derived = rhythm.find("h:derivation/h:derivedSeries", NS)
    median = None
    if derived is not None:
        d_set = derived.find("h:component/h:sequenceSet", NS)
        if d_set is not None:
            mfs, _, mnames, msig = _sequence_set(d_set)
            median = MedianBeats(mfs, mnames, msig)
    rhythm_aset = rhythm.find("h:subjectOf/h:annotationSet", NS)
    derived_aset = derived.find("h:subjectOf/h:annotationSet", NS) if derived is not None else None
    measurements: dict[str, Any] = {}
    _measurements(derived_aset, measurements)
    _measurements(rhythm_aset, measurements)
    if rhythm_aset is not None:  # per-beat values nested one level down (first beat) as a last resort
        beats = [a for a in rhythm_aset.iterfind("h:component/h:annotation", NS) if _code(a) == "MDC_ECG_BEAT"]
        _measurements(beats[0] if beats else None, measurements)
    statements = _findings(rhythm_aset) + [f for f in _findings(derived_aset) if f not in _findings(rhythm_aset)]
    if statements:
        measurements["statements"] = statements

    author = rhythm.find("h:author/h:seriesAuthor", NS)
    device = Device()
    if author is not None:
        dev = author.find("h:manufacturedSeriesDevice", NS)
        dev_id = dev.find("h:id", NS) if dev is not None else None
        device = Device(
            manufacturer=clean_text(author.findtext("h:manufacturerOrganization/h:name", default="", namespaces=NS)),
            model=clean_text(dev.findtext("h:manufacturerModelName", default="", namespaces=NS))
            if dev is not None
            else None,
            serial=clean_text(dev_id.get("extension")) if dev_id is not None else None,
            software=clean_text(dev.findtext("h:softwareName", default="", namespaces=NS)) if dev is not None else None,
        )
    return Recording(
        fs=fs,
        lead_names=names,
        signal_mv=signal,
        source_format="hl7_aecg",
        start_time=t0,
        device=device,
        patient=_patient(root),
        device_measurements=measurements,
        annotations=_wave_marks(rhythm_aset, t0, fs),
        median_beats=median,
    )
