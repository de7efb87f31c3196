"""DICOM ECG waveforms: 12-lead ECG, General ECG and Ambulatory ECG Waveform Storage (pydicom).

The rhythm multiplex group is the signal (the group labelled RHYTHM, else the longest); a group
labelled MEDIAN/REPRESENTATIVE becomes ``median_beats``. ``waveform_array`` applies channel
sensitivity, its correction factor and baseline; the result is converted from the channel
sensitivity units (UCUM uV/mV/V) to mV. Device measurements come from the numeric
WaveformAnnotationSequence items (SCP-ECG / MDC concept codes or their meanings), statements from the
unformatted text annotations, and the sample-positioned annotations (P onset, QRS offset...) become
``annotations`` when they refer to the rhythm group.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from services.ecg.formats.model import (
    Annotation,
    Device,
    FormatError,
    MedianBeats,
    Recording,
    clean_text,
    put,
    unique_lead_names,
    unit_scale_to_mv,
)
from services.ecg.formats.scp_meta import scp_lead_name

ECG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.9.1.1": "12-lead ECG",
    "1.2.840.10008.5.1.4.1.1.9.1.2": "General ECG",
    "1.2.840.10008.5.1.4.1.1.9.1.3": "Ambulatory ECG",
}

_MEASUREMENT_BY_MEANING = {
    "rr interval": "rr_ms",
    "pp interval": "pp_ms",
    "pr interval": "pr_ms",
    "qrs duration": "qrs_ms",
    "qt interval": "qt_ms",
    "qtc interval": "qtc_ms",
    "p axis": "p_axis_deg",
    "qrs axis": "qrs_axis_deg",
    "t axis": "t_axis_deg",
    "ventricular heart rate": "hr_bpm",
    "heart rate": "hr_bpm",
    "atrial heart rate": "atrial_rate_bpm",
    "p duration": "p_ms",
}
_TIME_UNITS = {"ms": 1.0, "s": 1000.0, "us": 0.001}


def _channel_name(ch: Dataset) -> str:
    src = ch.get("ChannelSourceSequence")
    if src:
        item = src[0]
        scheme = str(item.get("CodingSchemeDesignator", "")).upper()
        value = str(item.get("CodeValue", ""))
        match = re.fullmatch(r"5\.6\.3-9-(\d+)", value)
        if scheme == "SCPECG" and match:
            return scp_lead_name(int(match.group(1)))
        meaning = clean_text(str(item.get("CodeMeaning", "")))
        if meaning:
            return meaning
    label = clean_text(str(ch.get("ChannelLabel", "")))
    return label or "?"


def _channel_mv_factor(ch: Dataset) -> float:
    units = ch.get("ChannelSensitivityUnitsSequence")
    if not units:
        raise FormatError("DICOM channel has no Channel Sensitivity Units: cannot convert to mV")
    return unit_scale_to_mv(str(units[0].get("CodeValue", "")))


def _group_signal(ds: Dataset, index: int) -> tuple[float, list[str], np.ndarray]:
    group = ds.WaveformSequence[index]
    try:
        raw = ds.waveform_array(index)
    except Exception as exc:  # pydicom raises several types for malformed waveform data
        raise FormatError(f"DICOM waveform group {index + 1} cannot be decoded: {exc}") from exc
    channels = list(group.ChannelDefinitionSequence)
    if raw.ndim != 2 or raw.shape[1] != len(channels):
        raise FormatError(f"DICOM waveform group {index + 1}: data does not match its channel definitions")
    factors = np.array([_channel_mv_factor(ch) for ch in channels])
    names = unique_lead_names(_channel_name(ch) for ch in channels)
    return float(group.SamplingFrequency), names, (raw * factors).astype(np.float32)


def _label(group: Dataset) -> str:
    return str(group.get("MultiplexGroupLabel", "")).upper()


def _parse_dt(ds: Dataset) -> datetime | None:
    text = str(ds.get("AcquisitionDateTime", "") or "")
    if not text:
        d, t = (
            str(ds.get("AcquisitionDate", "") or ds.get("ContentDate", "") or ""),
            str(ds.get("AcquisitionTime", "") or ds.get("ContentTime", "") or ""),
        )
        text = d + t if d else ""
    match = re.fullmatch(r"(\d{8})(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?", text.strip())
    if not match:
        return None
    day, hh, mm, ss, frac, tz = match.groups()
    try:
        value = datetime.strptime(day, "%Y%m%d").replace(
            hour=int(hh or 0), minute=int(mm or 0), second=int(ss or 0), microsecond=int((frac or "0").ljust(6, "0"))
        )
    except ValueError:
        return None
    tz = tz or str(ds.get("TimezoneOffsetFromUTC", "") or "") or None
    if tz and re.fullmatch(r"[+-]\d{4}", tz):
        sign = 1 if tz[0] == "+" else -1
        value = value.replace(tzinfo=timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5]))))
    return value


def _patient(ds: Dataset) -> dict[str, Any]:
    patient: dict[str, Any] = {}
    put(patient, "id", clean_text(str(ds.get("PatientID", "") or "")))
    put(patient, "name", clean_text(str(ds.get("PatientName", "") or "").replace("^", " ")))
    put(patient, "sex", {"M": "M", "F": "F"}.get(str(ds.get("PatientSex", "")).upper()))
    birth = str(ds.get("PatientBirthDate", "") or "")
    if re.fullmatch(r"\d{8}", birth):
        try:
            patient["birth_date"] = date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
        except ValueError:
            pass
    age = re.fullmatch(r"(\d{3})([DWMY])", str(ds.get("PatientAge", "") or ""))
    if age:
        n, unit = int(age.group(1)), age.group(2)
        patient["age"] = n if unit == "Y" else round(n / {"M": 12, "W": 52.18, "D": 365.25}[unit], 2)
    return patient


def _annotations(ds: Dataset, rhythm_group: int) -> tuple[dict[str, Any], list[Annotation]]:
    measurements: dict[str, Any] = {}
    statements: list[str] = []
    marks: list[Annotation] = []
    for item in ds.get("WaveformAnnotationSequence", []):
        text = clean_text(str(item.get("UnformattedTextValue", "") or ""))
        concept = item.get("ConceptNameCodeSequence")
        meaning = str(concept[0].get("CodeMeaning", "")) if concept else ""
        if text and not meaning:
            statements.append(text)
            continue
        channels = list(item.get("ReferencedWaveformChannels", []) or [])
        positions = item.get("ReferencedSamplePositions")
        if positions is not None and meaning:
            if channels and channels[0] != rhythm_group + 1:
                continue
            vals = [int(v) for v in positions] if hasattr(positions, "__iter__") else [int(positions)]
            marks.append(
                Annotation(
                    sample=vals[0] - 1,
                    label=meaning,
                    end_sample=vals[1] - 1 if len(vals) > 1 else None,
                    aux=f"annotation group {item.get('AnnotationGroupNumber', '')}",
                )
            )
            continue
        key = _MEASUREMENT_BY_MEANING.get(meaning.strip().lower())
        if key is None or item.get("NumericValue") is None:
            continue
        value = float(item.NumericValue)
        unit_seq = item.get("MeasurementUnitsCodeSequence")
        unit = str(unit_seq[0].get("CodeValue", "")) if unit_seq else ""
        if key.endswith("_ms"):
            value *= _TIME_UNITS.get(unit, 1.0)
        if key.endswith("_ms") and value <= 0:
            continue
        measurements[key] = round(value) if value == round(value) else value
    if "hr_bpm" not in measurements and measurements.get("rr_ms"):
        measurements["hr_bpm"] = round(60000 / measurements["rr_ms"])
    if statements:
        measurements["statements"] = statements
    return measurements, marks


def read_dicom(path: str | Path) -> Recording:
    try:
        ds = pydicom.dcmread(str(path))
    except (InvalidDicomError, EOFError, OSError, ValueError) as exc:
        raise FormatError(f"not a readable DICOM file: {exc}") from exc
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in ECG_SOP_CLASSES:
        raise FormatError(f"DICOM object is not an ECG waveform (SOP class {sop or 'missing'})")
    groups = list(ds.get("WaveformSequence", []))
    if not groups:
        raise FormatError("DICOM ECG has no WaveformSequence")
    labels = [_label(g) for g in groups]
    rhythm = next((i for i, lab in enumerate(labels) if "RHYTHM" in lab), None)
    if rhythm is None:
        candidates = [i for i, lab in enumerate(labels) if "MEDIAN" not in lab and "REPRESENT" not in lab]
        candidates = candidates or list(range(len(groups)))
        rhythm = max(
            candidates, key=lambda i: int(groups[i].NumberOfWaveformSamples) / float(groups[i].SamplingFrequency)
        )
    fs, names, signal = _group_signal(ds, rhythm)
    median = None
    for i, lab in enumerate(labels):
        if i != rhythm and ("MEDIAN" in lab or "REPRESENT" in lab):
            mfs, mnames, msig = _group_signal(ds, i)
            median = MedianBeats(mfs, mnames, msig)
            break
    measurements, marks = _annotations(ds, rhythm)
    device = Device(
        manufacturer=clean_text(str(ds.get("Manufacturer", "") or "")),
        model=clean_text(str(ds.get("ManufacturerModelName", "") or "")),
        serial=clean_text(str(ds.get("DeviceSerialNumber", "") or "")),
        software=clean_text(str(ds.get("SoftwareVersions", "") or "")),
    )
    return Recording(
        fs=fs,
        lead_names=names,
        signal_mv=signal,
        source_format="dicom",
        start_time=_parse_dt(ds),
        device=device,
        patient=_patient(ds),
        device_measurements=measurements,
        annotations=marks,
        median_beats=median,
        extra={"sop_class": ECG_SOP_CLASSES[sop], "multiplex_group": labels[rhythm]},
    )
