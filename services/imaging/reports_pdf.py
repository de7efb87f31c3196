"""The signed imaging report as a PDF (A4 portrait, text): findings, impression, critical finding, signature,
content hash, addenda. Drawn with matplotlib; Chinese needs a CJK font (common/fonts.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from common.text_pdf import render_lines, wrap
from services.imaging.reading_templates import by_key

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
TITLE_EN = "Imaging Report"


@dataclass
class ImagingReportDocument:
    """What the PDF shows: no patient name or ID (the DICOM object around it carries the study's)."""

    study_instance_uid: str
    study_description: str
    study_date: str | None
    priority: str
    received_at: datetime
    modality: str
    template: str
    findings: str
    impression: str
    critical: bool
    critical_note: str
    signer_name: str
    signed_at: datetime
    content_hash: str
    addenda: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return by_key(self.template).title


def _local(t: datetime) -> str:
    return t.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _lines(doc: ImagingReportDocument) -> list[tuple[str, float, bool]]:
    """(text, font size, bold) in reading order."""
    rows: list[tuple[str, float, bool]] = [
        (f"{doc.title}  {TITLE_EN}", 16, True),
        (f"检查 Study {doc.study_instance_uid}", 8, False),
        (f"检查类型 Modality: {doc.modality or '—'} · 检查日期 Study date: {doc.study_date or '—'}"
         f" · 优先级 Priority: {doc.priority}", 10, False),
        (f"检查描述 Description: {doc.study_description or '—'} · 接收 Received: {_local(doc.received_at)}", 10, False),
        ("", 6, False),
    ]
    if doc.critical:
        rows.append(("危急值 CRITICAL FINDING", 12, True))
        rows += [(line, 10, False) for line in wrap(doc.critical_note or "—")]
        rows.append(("", 6, False))
    rows.append(("检查所见 Findings", 12, True))
    rows += [(line, 10, False) for line in wrap(doc.findings)]
    rows.append(("", 6, False))
    rows.append(("诊断意见 Impression", 12, True))
    rows += [(line, 10, False) for line in wrap(doc.impression)]
    rows.append(("", 6, False))
    rows.append((f"签名医师 Signed by: {doc.signer_name}    签名时间 Signed at: {_local(doc.signed_at)}", 10, True))
    rows.append((f"内容校验 SHA-256: {doc.content_hash}", 8, False))
    for add in doc.addenda:
        rows.append(("", 6, False))
        rows.append((f"补充报告 Addendum · {_local(add['created_at'])} · {add['author_name']}", 11, True))
        rows += [(line, 10, False) for line in wrap(str(add["text"]))]
        rows.append((f"SHA-256: {add['content_hash']}", 7, False))
    return rows


def render_pdf(doc: ImagingReportDocument, font_path: str | None = None) -> bytes:
    """The report as PDF bytes (as many A4 pages as the text needs)."""
    return render_lines(_lines(doc), title=f"{doc.title} {TITLE_EN}", creator="telehealth imaging cloud",
                        footer=lambda n, pages: f"{doc.title} {TITLE_EN} · {n}/{pages}",
                        font_path=font_path, font_env="IMAGING_CJK_FONT")
