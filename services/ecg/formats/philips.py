"""Philips Sierra ECG XML (1.03, 1.04.x; UTF-8 or UTF-16) reader.

The samples come from the ``sierraecg`` package (base64, XLI decompression, and the reconstruction of
III/aVR/aVL/aVF from the residuals the cart stores); the amplitude resolution (µV per unit), cart
measurements, interpretation statements, patient and device come from the XML, parsed with lxml
namespace-agnostically (Philips changed namespaces between versions).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from lxml import etree

from services.ecg.formats.model import (
    Device,
    FormatError,
    MedianBeats,
    Recording,
    clean_text,
    put,
    stack_leads,
    unique_lead_names,
)

_MEASURES = {  # tag -> key; the first tag found wins (interpretation measurements before raw ones)
    "heartrate": "hr_bpm",
    "meanventrate": "hr_bpm",
    "atrialrate": "atrial_rate_bpm",
    "rrint": "rr_ms",
    "pdur": "p_ms",
    "print": "pr_ms",
    "meanprint": "pr_ms",
    "qrsdur": "qrs_ms",
    "meanqrsdur": "qrs_ms",
    "qtint": "qt_ms",
    "meanqtint": "qt_ms",
    "qtcb": "qtcb_ms",
    "qtcf": "qtcf_ms",
    "meanqtc": "qtc_ms",
    "pfrontaxis": "p_axis_deg",
    "qrsfrontaxis": "qrs_axis_deg",
    "tfrontaxis": "t_axis_deg",
}


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _find(root: etree._Element | None, *names: str) -> etree._Element | None:
    """First descendant following the chain of local names."""
    node = root
    for name in names:
        if node is None:
            return None
        node = next((e for e in node.iter() if e is not node and _local(e) == name), None)
    return node


def _text(root: etree._Element | None, *names: str) -> str | None:
    node = _find(root, *names)
    return clean_text(node.text) if node is not None and node.text else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None  # "Indeterminate", "Failed"


def _measurements(root: etree._Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    interpretation = _find(root, "interpretation")
    scopes = [s for s in (interpretation, _find(root, "measurements")) if s is not None]
    for scope in scopes:
        for el in scope.iter():
            key = _MEASURES.get(_local(el))
            if key is None or key in out or _local(el.getparent()) == "leadmeasurements":
                continue
            value = _number(el.text)
            if value is not None and not (key.endswith("_ms") and value <= 0):
                out[key] = int(value) if value == int(value) else value
    if interpretation is not None:
        statements = []
        for st in interpretation.iter():
            if _local(st) != "statement":
                continue
            left, right = _text(st, "leftstatement"), _text(st, "rightstatement")
            if left:
                statements.append(f"{left} ({right})" if right else left)
        if statements:
            out["statements"] = statements
        severity = _text(interpretation, "severity")
        if severity:
            out["severity"] = severity.strip("- ").strip()
    return out


def _patient(root: etree._Element) -> dict[str, Any]:
    patient: dict[str, Any] = {}
    general = _find(root, "generalpatientdata")
    if general is None:
        return patient
    put(patient, "id", _text(general, "patientid"))
    name = " ".join(p for p in (_text(general, "firstname"), _text(general, "lastname")) if p)
    put(patient, "name", name)
    put(patient, "sex", {"male": "M", "female": "F"}.get((_text(general, "sex") or "").lower()))
    years = _number(_text(general, "age", "years"))
    put(patient, "age", int(years) if years is not None and years == int(years) else years)
    dob = _text(general, "dateofbirth")
    if dob:
        try:
            patient["birth_date"] = date.fromisoformat(dob)
        except ValueError:
            pass
    return patient


def _start(root: etree._Element) -> datetime | None:
    acq = _find(root, "dataacquisition")
    if acq is None or not acq.get("date"):
        return None
    try:
        return datetime.fromisoformat(f"{acq.get('date')}T{acq.get('time') or '00:00:00'}")
    except ValueError:
        return None


def _device(root: etree._Element) -> Device:
    machine = _find(root, "dataacquisition", "machine")
    if machine is None:
        return Device(manufacturer="Philips")
    detail = (machine.get("detaildescription") or "").split(":")
    return Device(
        manufacturer=clean_text(detail[0]) if detail[0] else "Philips",
        model=clean_text(machine.text),
        serial=clean_text(machine.get("machineid")),
        software=clean_text(detail[-1]) if len(detail) > 1 else None,
    )


def read_philips(path: str | Path) -> Recording:
    try:
        import sierraecg
    except ImportError as exc:  # pragma: no cover - dependency declared in pyproject
        raise FormatError("Philips XML support needs the 'sierraecg' package") from exc
    try:
        root = etree.parse(
            str(path), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
        ).getroot()
    except etree.XMLSyntaxError as exc:
        raise FormatError(f"malformed XML: {exc}") from exc
    if _local(root) != "restingecgdata":
        raise FormatError(f"not a Philips Sierra ECG document (root element {_local(root)})")
    try:
        parsed = sierraecg.read_file(str(path), include_repbeats=True)
    except Exception as exc:  # the package raises RuntimeError subclasses, ValueError, IndexError...
        raise FormatError(f"Philips waveform data cannot be decoded: {exc}") from exc
    waves = _find(root, "parsedwaveforms")
    signal_chars = _find(root, "signalcharacteristics")
    resolution = _number(waves.get("resolution") if waves is not None else None) or _number(
        _text(signal_chars, "signalresolution") or _text(signal_chars, "resolution")
    )
    warnings: list[str] = []
    if not resolution:
        resolution = 5.0
        warnings.append("no amplitude resolution in the file; assumed 5 µV per unit (the Philips default)")
    if not parsed.leads:
        raise FormatError("Philips XML carries no leads")
    names = unique_lead_names(lead.label for lead in parsed.leads)
    columns = [np.asarray(lead.samples, dtype=np.float64) * resolution / 1000 for lead in parsed.leads]
    fs_values = {int(lead.sampling_freq) for lead in parsed.leads}
    if len(fs_values) != 1 or not min(fs_values) > 0:
        raise FormatError(f"Philips leads have inconsistent sampling rates {sorted(fs_values)}")
    median = None
    beats = [b for b in parsed.repbeats.values() if len(b.samples) and b.sampling_freq]
    if beats and len({len(b.samples) for b in beats}) == 1:
        # representative beats are padded with 32767 (int16 max) after their end: drop the padding
        raw = np.stack([np.asarray(b.samples) for b in beats], axis=1)
        valid_rows = np.nonzero((raw != 32767).any(axis=1))[0]
        if valid_rows.size:
            raw = raw[: valid_rows[-1] + 1].astype(np.float64)
            raw[raw == 32767] = np.nan
            scale = np.array([(b.resolution or resolution) / 1000 for b in beats])
            median = MedianBeats(
                float(beats[0].sampling_freq),
                unique_lead_names(b.label for b in beats),
                (raw * scale).astype(np.float32),
            )
    return Recording(
        fs=float(fs_values.pop()),
        lead_names=names,
        signal_mv=stack_leads(columns, names),
        source_format="philips_xml",
        start_time=_start(root),
        device=_device(root),
        patient=_patient(root),
        device_measurements=_measurements(root),
        median_beats=median,
        warnings=warnings,
        extra={"document_version": parsed.doc_ver, "resolution_uv": resolution},
    )
