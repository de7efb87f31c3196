"""The signed consult opinion as a PDF (A4 portrait, text), kept by both sides: the consult's summary, the
opinion, the signer, the time and the content hash, addenda, the requester's acknowledgement.

Drawn with matplotlib like the imaging and ECG reports; Chinese needs a CJK font (common/fonts.py,
``CONSULT_CJK_FONT`` to choose one). Like those reports it names no patient: sex, age and the register
reference only (the consult record around it carries the identity).
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from common.fonts import cjk_font

PAGE_W, PAGE_H = 210.0, 297.0  # mm
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
TITLE_ZH, TITLE_EN = "远程会诊意见书", "Remote Consultation Opinion"
LINE_UNITS = 92  # half-width characters per line at 10 pt
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


def wrap(text: str, units: int = LINE_UNITS) -> list[str]:
    """Lines of at most ``units`` half-width cells (CJK characters count two), keeping the text's newlines."""
    out: list[str] = []
    for para in text.splitlines() or [""]:
        line, width = "", 0
        for ch in para:
            w = 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
            if width + w > units:
                out.append(line)
                line, width = "", 0
            line += ch
            width += w
        out.append(line)
    return out


Line = tuple[str, float, bool]


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
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    _, family = cjk_font(font_path, "CONSULT_CJK_FONT")
    matplotlib.rcParams["pdf.fonttype"] = 3  # Type 3 subsets: the CJK fonts are CFF, not TrueType
    matplotlib.rcParams["font.family"] = [family, "DejaVu Sans"]
    pages: list[list[tuple[str, float, bool, float]]] = [[]]
    y = PAGE_H - 20.0
    for text, size, bold in lines(doc):
        step = size * 0.3528 * 1.45  # points to mm, with leading
        if y - step < 20.0:
            pages.append([])
            y = PAGE_H - 20.0
        y -= step
        pages[-1].append((text, size, bold, y))
    out = io.BytesIO()
    meta = {"Title": f"{TITLE_ZH} {TITLE_EN}", "Creator": "telehealth consult cloud", "CreationDate": None}
    with PdfPages(out, metadata=meta) as pdf:
        for n, page in enumerate(pages, start=1):
            fig = Figure(figsize=(PAGE_W / 25.4, PAGE_H / 25.4))
            for text, size, bold, y_mm in page:
                if text:
                    fig.text(18.0 / PAGE_W, y_mm / PAGE_H, text, fontsize=size, weight="bold" if bold else "normal")
            fig.text(0.5, 0.02, f"{TITLE_ZH} {TITLE_EN} · {doc.consult_id} · {n}/{len(pages)}", ha="center",
                     fontsize=7, color="#555555")
            pdf.savefig(fig)
    return out.getvalue()
