"""Report templates per modality: the findings and impression a draft starts with (Chinese starter text)."""

from __future__ import annotations

from collections.abc import Iterable

from services.imaging.reading_schemas import Template

TEMPLATES: tuple[Template, ...] = (
    Template(
        key="ct", modalities=["CT"], title="CT 检查报告",
        findings="扫描范围及方式:\n平扫所见:\n增强所见(如有):\n其他:",
        impression="1. \n2. \n(与既往检查对比:)",
    ),
    Template(
        key="mr", modalities=["MR"], title="MR 检查报告",
        findings="扫描序列:\nT1WI / T2WI / FLAIR / DWI 所见:\n增强所见(如有):\n其他:",
        impression="1. \n2. ",
    ),
    Template(
        key="xr", modalities=["DX", "CR", "DR", "RF", "MG"], title="X 线检查报告",
        findings="摄影体位:\n骨质及关节:\n软组织:\n心肺膈(胸片):",
        impression="1. ",
    ),
    Template(
        key="us", modalities=["US"], title="超声检查报告",
        findings="检查部位:\n形态大小:\n回声及血流:\n其他:",
        impression="超声提示:\n1. ",
    ),
    Template(
        key="default", modalities=[], title="影像检查报告",
        findings="检查所见:", impression="诊断意见:",
    ),
)
# Objects of our own or of presentation (no pixels to read): never choose the template.
NON_IMAGE_MODALITIES = frozenset({"DOC", "SR", "KO", "PR", "OT", "REG", "SEG"})


def template_for(modalities: Iterable[str]) -> tuple[Template, str]:
    """(template, reading modality) for a study's modalities: the first modality with a template, else default."""
    imaging = [m for m in modalities if m and m not in NON_IMAGE_MODALITIES]
    for modality in imaging:
        for t in TEMPLATES:
            if modality in t.modalities:
                return t, modality
    return TEMPLATES[-1], (imaging[0] if imaging else "")


def by_key(key: str) -> Template:
    return next((t for t in TEMPLATES if t.key == key), TEMPLATES[-1])
