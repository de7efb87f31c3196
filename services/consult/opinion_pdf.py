"""The signed consult opinion as a PDF (A4 portrait, text), kept by both sides: the consult's summary, the
opinion, the signer, the time and the content hash, addenda, the requester's acknowledgement.

Drawn with matplotlib like the imaging and ECG reports; Chinese needs a CJK font (common/fonts.py,
``CONSULT_CJK_FONT`` to choose one). Like those reports it names no patient: sex, age and the register
reference only (the consult record around it carries the identity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from common.text_pdf import Line, render_lines, wrap

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
TITLE_ZH, TITLE_EN = "远程会诊意见书", "Remote Consultation Opinion"
URGENCY = {"emergency": "急诊 emergency", "urgent": "加急 urgent", "routine": "普通 routine"}
SEX = {"male": "男 male", "female": "女 female", "other": "其他 other", "unknown": "未知 unknown"}


@dataclass
class OpinionDocument:
    """What the PDF shows (no patient name or ID number)."""

    consult_id: str
    urgency: str
    specialty: str
    target_department: str
    requester_name: str
    consultant_name: str
    patient_sex: str
    patient_age: int | None
    patient_ref: str | None
    reason: str
    question: str
    clinical_summary: str
    requested_at: datetime | None
    findings: str
    diagnosis: str
    recommendations: str
    follow_up: str
    referral_advised: bool
    signer_name: str
    signed_at: datetime
    content_hash: str
    acknowledged_name: str | None = None
    acknowledged_at: datetime | None = None
    addenda: list[dict[str, Any]] = field(default_factory=list)


def _local(t: datetime | None) -> str:
    return t.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S") if t else "—"




def _section(title: str, text: str) -> list[Line]:
    return [(title, 12, True), *[(line, 10, False) for line in wrap(text.strip() or "—")], ("", 6, False)]


def lines(doc: OpinionDocument) -> list[Line]:
    """(text, font size, bold) in reading order."""
    age = f"{doc.patient_age} 岁" if doc.patient_age is not None else "—"
    rows: list[Line] = [
        (f"{TITLE_ZH}  {TITLE_EN}", 16, True),
        (f"会诊编号 Consult {doc.consult_id}", 8, False),
        (f"申请医生 Requested by: {doc.requester_name} · 申请时间 Requested: {_local(doc.requested_at)}", 10, False),
        (f"会诊专家 Consultant: {doc.consultant_name or '—'} · 专科 Specialty: {doc.specialty or '—'}"
         f" · 科室 Department: {doc.target_department or '—'}", 10, False),
        (f"紧急程度 Urgency: {URGENCY.get(doc.urgency, doc.urgency)} · 患者 Patient: "
         f"{SEX.get(doc.patient_sex, doc.patient_sex)}, {age} · 登记号 Register ref: {doc.patient_ref or '—'}",
         10, False),
        ("", 6, False),
    ]
    rows += _section("会诊目的 Reason and question", "\n".join(t for t in (doc.reason, doc.question) if t))
    rows += _section("病情摘要 Clinical summary", doc.clinical_summary)
    rows += _section("会诊所见 Findings", doc.findings)
    rows += _section("诊断意见 Diagnosis", doc.diagnosis)
    rows += _section("处理建议 Recommendations", doc.recommendations)
    rows += _section("随访 Follow-up", doc.follow_up)
    rows.append((f"建议转诊 Referral advised: {'是 yes' if doc.referral_advised else '否 no'}", 11, True))
    rows.append(("", 6, False))
    rows.append((f"签名专家 Signed by: {doc.signer_name}    签名时间 Signed at: {_local(doc.signed_at)}", 10, True))
    rows.append((f"内容校验 SHA-256: {doc.content_hash}", 8, False))
    if doc.acknowledged_at:
        rows.append((f"申请方已阅 Acknowledged by {doc.acknowledged_name or '—'} at {_local(doc.acknowledged_at)}",
                     9, False))
    for add in doc.addenda:
        rows.append(("", 6, False))
        rows.append((f"补充意见 Addendum · {_local(add['created_at'])} · {add['author_name']}", 11, True))
        rows += [(line, 10, False) for line in wrap(str(add["text"]))]
        rows.append((f"SHA-256: {add['content_hash']}", 7, False))
    rows.append(("", 6, False))
    rows.append(("本意见由会诊专家电子签名,供申请方医师参考,诊疗决定由经治医师作出。", 8, False))
    rows.append(("Electronically signed by the consultant; the treating physician decides the care.", 8, False))
    return rows


def render_pdf(doc: OpinionDocument, font_path: str | None = None) -> bytes:
    """The opinion as PDF bytes (as many A4 pages as the text needs)."""
    return render_lines(lines(doc), title=f"{TITLE_ZH} {TITLE_EN}", creator="telehealth consult cloud",
                        footer=lambda n, pages: f"{TITLE_ZH} {TITLE_EN} · {doc.consult_id} · {n}/{pages}",
                        font_path=font_path, font_env="CONSULT_CJK_FONT")
