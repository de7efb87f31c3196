"""The signed report as a PDF: a summary page (measurements, statements, signature) and the tracing.

The tracing is the standard layout: 3 rows x 4 columns of 2.5 s (I/II/III, aVR/aVL/aVF, V1–V3, V4–V6) plus a
10 s rhythm strip of lead II, at 25 mm/s and 10 mm/mV on a millimetre grid with a 1 mV calibration pulse.
Drawn with matplotlib in millimetre data units on A4 landscape, so 1 mm on paper is 1 mm of grid. Chinese
text needs a CJK font from the OS (fonts-noto-cjk): ``cjk_font()`` finds one or says how to install it.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from common.fonts import FONT_CANDIDATES, FontMissing, cjk_font, find_cjk_font  # noqa: F401 - re-exported

PAGE_W, PAGE_H = 297.0, 210.0  # A4 landscape, mm
MM_PER_S, MM_PER_MV = 25.0, 10.0
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
TITLE_ZH, TITLE_EN = "心电图诊断报告", "ECG Report"
GRID_ROWS = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
MEASURE_LABELS = (
    ("hr_bpm", "心率 HR", "bpm"), ("pr_ms", "PR 间期 PR", "ms"), ("qrs_ms", "QRS 时限 QRS", "ms"),
    ("qt_ms", "QT 间期 QT", "ms"), ("qtc_ms", "QTc", "ms"), ("p_axis_deg", "P 电轴 P axis", "°"),
    ("qrs_axis_deg", "QRS 电轴 QRS axis", "°"), ("t_axis_deg", "T 电轴 T axis", "°"),
)


@dataclass
class ReportDocument:
    """Everything the PDF shows; patient-free apart from the register reference and file age/sex."""

    recording_id: str
    priority: str
    received_at: datetime
    signed_at: datetime
    signer_name: str
    content_hash: str
    source_format: str
    fs: float
    lead_names: list[str]
    duration_s: float
    device: dict[str, Any]
    file_patient: dict[str, Any]
    patient_ref: str | None
    measurements: dict[str, Any]
    statements: list[dict[str, Any]]
    conclusion: str
    tracing: np.ndarray  # samples x leads, mV (the first 10 s)
    tracing_fs: float
    tracing_leads: list[str]
    addenda: list[dict[str, Any]] = field(default_factory=list)


def _local(t: datetime) -> str:
    return t.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def complete_limb_leads(signal: np.ndarray, leads: list[str]) -> tuple[np.ndarray, list[str]]:
    """Derive III, aVR, aVL, aVF from I and II when the file left them out (8-lead devices)."""
    if "I" not in leads or "II" not in leads:
        return signal, leads
    i, ii = signal[:, leads.index("I")], signal[:, leads.index("II")]
    derived = {"III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2, "aVF": ii - i / 2}
    extra = [name for name in derived if name not in leads]
    if not extra:
        return signal, leads
    cols = [signal] + [derived[name][:, None] for name in extra]
    return np.hstack(cols).astype(np.float32), [*leads, *extra]


def render_pdf(doc: ReportDocument, font_path: str | None = None) -> bytes:
    """The report as PDF bytes (A4 landscape): summary, tracing, addenda."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    _, family = cjk_font(font_path)
    matplotlib.rcParams["pdf.fonttype"] = 3  # Type 3 subsets: the CJK fonts are CFF, not TrueType
    matplotlib.rcParams["font.family"] = [family, "DejaVu Sans"]
    out = io.BytesIO()
    pages = [_summary_page, _tracing_page] + ([_addenda_page] if doc.addenda else [])
    with PdfPages(out, metadata={"Title": f"{TITLE_ZH} {TITLE_EN}", "Creator": "telehealth ECG cloud"}) as pdf:
        for n, draw in enumerate(pages, start=1):
            fig = Figure(figsize=(PAGE_W / 25.4, PAGE_H / 25.4))
            draw(fig, doc)
            fig.text(0.5, 0.02, f"{TITLE_ZH} {TITLE_EN} · {doc.recording_id} · {n}/{len(pages)}",
                     ha="center", fontsize=7, color="#555555")
            pdf.savefig(fig)
    return out.getvalue()


def _header(fig: Any, subtitle: str) -> None:
    fig.text(0.04, 0.93, f"{TITLE_ZH}  {TITLE_EN}", fontsize=18, weight="bold")
    fig.text(0.04, 0.895, subtitle, fontsize=9, color="#333333")


def _summary_page(fig: Any, doc: ReportDocument) -> None:
    device = " ".join(str(doc.device.get(k)) for k in ("manufacturer", "model") if doc.device.get(k)) or "—"
    patient = ", ".join(f"{k} {v}" for k, v in doc.file_patient.items()) or "—"
    _header(fig, f"记录 Recording {doc.recording_id} · 优先级 Priority {doc.priority}")
    info = [
        f"接收时间 Received: {_local(doc.received_at)} (Asia/Shanghai)",
        f"格式 Format: {doc.source_format} · {doc.fs:g} Hz · {len(doc.lead_names)} 导联 leads · {doc.duration_s:.1f} s",
        f"设备 Device: {device}",
        f"患者 Patient (file): {patient} · 登记号 Register ref: {doc.patient_ref or '—'}",
    ]
    y = 0.84
    for line in info:
        fig.text(0.04, y, line, fontsize=10)
        y -= 0.035
    fig.text(0.04, y - 0.01, "测量 Measurements", fontsize=12, weight="bold")
    y -= 0.05
    for key, label, unit in MEASURE_LABELS:
        value = doc.measurements.get(key)
        fig.text(0.06, y, label, fontsize=10)
        fig.text(0.26, y, "—" if value is None else f"{value} {unit}", fontsize=10)
        y -= 0.03
    x2, y2 = 0.45, 0.79
    fig.text(x2, y2, "诊断 Interpretation", fontsize=12, weight="bold")
    y2 -= 0.045
    for st in doc.statements:
        source = "机器 machine" if st.get("source") == "machine" else "医师 reader"
        text = " / ".join(t for t in (st.get("zh"), st.get("en")) if t)
        for k, line in enumerate(textwrap.wrap(f"• {text} [{source}]", 70) or [""]):
            fig.text(x2 + (0.015 if k else 0), y2, line, fontsize=10)
            y2 -= 0.03
    if doc.conclusion:
        y2 -= 0.01
        fig.text(x2, y2, "结论 Conclusion", fontsize=12, weight="bold")
        y2 -= 0.04
        for line in textwrap.wrap(doc.conclusion, 60)[:12]:
            fig.text(x2, y2, line, fontsize=10)
            y2 -= 0.03
    fig.text(0.04, 0.14, f"签名医师 Signed by: {doc.signer_name}    签名时间 Signed at: {_local(doc.signed_at)}",
             fontsize=10, weight="bold")
    fig.text(0.04, 0.11, f"内容校验 SHA-256: {doc.content_hash}", fontsize=8)
    fig.text(0.04, 0.08, "本报告经医师审核并电子签名;机器分析结果仅供参考。"
             " Reviewed and electronically signed by the physician; machine statements are advisory.",
             fontsize=8, color="#444444")


def _grid(ax: Any, x0: float, x1: float, y1: float) -> None:
    from matplotlib.collections import LineCollection

    def lines(step: float) -> list[tuple[tuple[float, float], tuple[float, float]]]:
        xs = [float(x) for x in np.arange(x0, x1 + 0.01, step)]
        ys = [float(y) for y in np.arange(0, y1 + 0.01, step)]
        return [((x, 0.0), (x, y1)) for x in xs] + [((x0, y), (x1, y)) for y in ys]

    minor, major = lines(1.0), lines(5.0)
    ax.add_collection(LineCollection(minor, colors="#f7cccc", linewidths=0.2))
    ax.add_collection(LineCollection(major, colors="#e58f8f", linewidths=0.45))


def _trace(ax: Any, sig: np.ndarray, fs: float, x0: float, base: float) -> None:
    t = np.arange(sig.shape[0]) / fs * MM_PER_S + x0
    ax.plot(t, base + sig * MM_PER_MV, color="black", linewidth=0.45)


def _calibration(ax: Any, base: float) -> None:
    ax.plot([-9, -7, -7, -2, -2, 0], [base, base, base + 10, base + 10, base, base], color="black", linewidth=0.6)


def _tracing_page(fig: Any, doc: ReportDocument) -> None:
    sig, leads = complete_limb_leads(doc.tracing, list(doc.tracing_leads))
    fs = doc.tracing_fs
    seconds = min(10.0, sig.shape[0] / fs) if fs > 0 else 0.0
    standard = all(name in leads for row in GRID_ROWS for name in row)
    rows: list[list[tuple[str, float, float]]] = []  # per row: (lead, start s, length s)
    if standard:
        col = seconds / 4
        rows = [[(name, k * col, col) for k, name in enumerate(row)] for row in GRID_ROWS]
        rows.append([("II", 0.0, seconds)])
    else:
        rows = [[(name, 0.0, seconds)] for name in leads[:12]]
    row_h = min(38.0, 160.0 / max(1, len(rows)))
    height = row_h * len(rows)
    width = seconds * MM_PER_S
    left, bottom = 18.0, 20.0
    ax = fig.add_axes((left / PAGE_W, bottom / PAGE_H, (width + 10) / PAGE_W, height / PAGE_H))
    ax.set_xlim(-10, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    _grid(ax, -10, width, height)
    for r, row in enumerate(rows):
        base = height - row_h * (r + 0.5)
        _calibration(ax, base)
        for name, start, length in row:
            a, b = round(start * fs), round((start + length) * fs)
            _trace(ax, sig[a:b, leads.index(name)], fs, start * MM_PER_S, base)
            ax.text(start * MM_PER_S + 1.5, base + row_h * 0.3, name, fontsize=8, weight="bold")
    _header(fig, f"{MM_PER_S:g} mm/s · {MM_PER_MV:g} mm/mV · {fs:g} Hz · 记录 Recording {doc.recording_id}")


def _addenda_page(fig: Any, doc: ReportDocument) -> None:
    _header(fig, f"补充报告 Addenda · 记录 Recording {doc.recording_id}")
    y = 0.84
    for add in doc.addenda:
        fig.text(0.04, y, f"{_local(add['created_at'])} · {add['author_name']}", fontsize=10, weight="bold")
        y -= 0.035
        for line in textwrap.wrap(str(add["text"]), 110)[:20]:
            fig.text(0.06, y, line, fontsize=10)
            y -= 0.03
        fig.text(0.06, y, f"SHA-256: {add['content_hash']}", fontsize=7, family="DejaVu Sans Mono")
        y -= 0.05
        if y < 0.1:
            break
