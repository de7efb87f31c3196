"""Clinical documents as text-only A4 PDFs in Chinese and English: wrapping by display width and paging a list
of (text, size in points, bold) lines, with a footer per page. Used by the imaging report and the consult
opinion; the font is found by common.fonts (a CJK font is required)."""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Callable, Sequence

from common.fonts import cjk_font

PAGE_W, PAGE_H = 210.0, 297.0  # mm
LINE_UNITS = 92  # half-width characters per line at 10 pt

Line = tuple[str, float, bool]


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


def render_lines(rows: Sequence[Line], *, title: str, creator: str, footer: Callable[[int, int], str],
                 font_path: str | None = None, font_env: str = "CJK_FONT") -> bytes:
    """``rows`` as PDF bytes, as many A4 pages as they need; ``footer(page, pages)`` at the foot of each."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    _, family = cjk_font(font_path, font_env)
    matplotlib.rcParams["pdf.fonttype"] = 3  # Type 3 subsets: the CJK fonts are CFF, not TrueType
    matplotlib.rcParams["font.family"] = [family, "DejaVu Sans"]
    pages: list[list[tuple[str, float, bool, float]]] = [[]]
    y = PAGE_H - 20.0
    for text, size, bold in rows:
        step = size * 0.3528 * 1.45  # points to mm, with leading
        if y - step < 20.0:
            pages.append([])
            y = PAGE_H - 20.0
        y -= step
        pages[-1].append((text, size, bold, y))
    out = io.BytesIO()
    meta = {"Title": title, "Creator": creator, "CreationDate": None}
    with PdfPages(out, metadata=meta) as pdf:
        for n, page in enumerate(pages, start=1):
            fig = Figure(figsize=(PAGE_W / 25.4, PAGE_H / 25.4))
            for text, size, bold, y_mm in page:
                if text:
                    fig.text(18.0 / PAGE_W, y_mm / PAGE_H, text, fontsize=size, weight="bold" if bold else "normal")
            fig.text(0.5, 0.02, footer(n, len(pages)), ha="center", fontsize=7, color="#555555")
            pdf.savefig(fig)
    return out.getvalue()
