"""The bureau's indicators, defined in code, DHIS2-style: value = numerator / denominator × factor.

Numerator and denominator each count events of some types in the period, optionally only those whose
payload contains given values (``{"on_time": true}``). Event types are those of common.events.EVENT_CATALOGUE.
Adding an indicator is adding an entry here; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.errors import NotFound


@dataclass(frozen=True)
class EventCount:
    """Events of any of ``event_types`` whose payload contains ``where``."""

    event_types: tuple[str, ...]
    where: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"event_types": list(self.event_types), "where": self.where}


@dataclass(frozen=True)
class Indicator:
    id: str
    name_zh: str
    name_en: str
    description: str
    numerator: EventCount
    denominator: EventCount
    factor: int = 100
    unit: str = "%"

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "description": self.description,
            "numerator": self.numerator.describe(),
            "denominator": self.denominator.describe(),
            "factor": self.factor,
            "unit": self.unit,
        }


def _on_time(event_type: str) -> EventCount:
    return EventCount((event_type,), {"on_time": True})


INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "remote_report_rate",
        "远程诊断报告完成率",
        "Remote diagnosis report completion",
        "Reports signed (imaging, ECG, pathology) per study, recording or case received.",
        EventCount(("imaging.report_signed", "ecg.report_signed", "pathology.report_signed")),
        EventCount(("imaging.study_received", "ecg.recording_received", "pathology.case_received")),
    ),
    Indicator(
        "imaging_report_rate",
        "影像报告完成率",
        "Imaging report completion",
        "Imaging reports signed per study received.",
        EventCount(("imaging.report_signed",)),
        EventCount(("imaging.study_received",)),
    ),
    Indicator(
        "imaging_on_time_rate",
        "影像报告及时率",
        "Imaging reports on time",
        "Imaging reports signed within the agreed turnaround, per report signed.",
        _on_time("imaging.report_signed"),
        EventCount(("imaging.report_signed",)),
    ),
    Indicator(
        "ecg_report_rate",
        "心电报告完成率",
        "ECG report completion",
        "ECG reports signed per recording received.",
        EventCount(("ecg.report_signed",)),
        EventCount(("ecg.recording_received",)),
    ),
    Indicator(
        "ecg_on_time_rate",
        "心电报告及时率",
        "ECG reports on time",
        "ECG reports signed within the agreed turnaround, per report signed.",
        _on_time("ecg.report_signed"),
        EventCount(("ecg.report_signed",)),
    ),
    Indicator(
        "ecg_critical_rate",
        "心电危急值检出率",
        "ECG critical value rate",
        "Critical values flagged per 1,000 recordings received.",
        EventCount(("ecg.critical_value",)),
        EventCount(("ecg.recording_received",)),
        factor=1000,
        unit="‰",
    ),
    Indicator(
        "pathology_report_rate",
        "病理报告完成率",
        "Pathology report completion",
        "Pathology reports signed per case received.",
        EventCount(("pathology.report_signed",)),
        EventCount(("pathology.case_received",)),
    ),
    Indicator(
        "consult_acceptance_rate",
        "会诊接受率",
        "Consultation acceptance",
        "Consultations accepted per consultation requested.",
        EventCount(("consult.accepted",)),
        EventCount(("consult.requested",)),
    ),
    Indicator(
        "consult_completion_rate",
        "会诊完成率",
        "Consultation completion",
        "Consultations closed with an opinion per consultation accepted.",
        EventCount(("consult.closed",)),
        EventCount(("consult.accepted",)),
    ),
    Indicator(
        "followup_completion_rate",
        "慢病随访完成率",
        "Chronic-disease follow-up completion",
        "Follow-ups done per follow-up due.",
        EventCount(("health_mgmt.followup_completed",)),
        EventCount(("health_mgmt.followup_due",)),
    ),
    Indicator(
        "hypertension_control_rate",
        "高血压控制率",
        "Hypertension control",
        "Hypertension follow-ups with blood pressure controlled, per hypertension follow-up done.",
        EventCount(("health_mgmt.followup_completed",), {"condition": "hypertension", "controlled": True}),
        EventCount(("health_mgmt.followup_completed",), {"condition": "hypertension"}),
    ),
    Indicator(
        "diabetes_control_rate",
        "糖尿病控制率",
        "Type 2 diabetes control",
        "Type 2 diabetes follow-ups with glucose controlled, per diabetes follow-up done.",
        EventCount(("health_mgmt.followup_completed",), {"condition": "t2dm", "controlled": True}),
        EventCount(("health_mgmt.followup_completed",), {"condition": "t2dm"}),
    ),
)

_BY_ID = {i.id: i for i in INDICATORS}


def indicator(indicator_id: str) -> Indicator:
    try:
        return _BY_ID[indicator_id]
    except KeyError:
        raise NotFound(f"no indicator {indicator_id!r}") from None
