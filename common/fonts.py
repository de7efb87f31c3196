"""A font with Chinese glyphs for the PDF reports (ECG, imaging): found in the usual OS places or configured.

``find_cjk_font`` is cheap (no matplotlib) and suits a readiness check; ``cjk_font`` registers the font with
matplotlib and answers its family name. The OS package is fonts-noto-cjk (infra/local/system-deps.sh).
"""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


class FontMissing(RuntimeError):
    """No font with Chinese glyphs on this machine."""


def find_cjk_font(configured: str | None = None, setting: str = "ECG_CJK_FONT") -> str:
    """The path of a font with Chinese glyphs (cheap: no matplotlib); FontMissing says how to get one.

    ``setting`` names the environment variable that configures it, for the error message."""
    paths = [configured] if configured else list(FONT_CANDIDATES)
    fc_match = shutil.which("fc-match")
    if not configured and fc_match:
        try:
            found = subprocess.run(  # noqa: S603 - fixed arguments, fc-match found on PATH above
                [fc_match, "-f", "%{file}", ":lang=zh-cn"], capture_output=True, text=True, timeout=5, check=False
            ).stdout.strip()
            paths.append(found)
        except (OSError, subprocess.SubprocessError):
            pass
    for p in paths:
        if p and Path(p).is_file() and Path(p).suffix.lower() in (".ttc", ".ttf", ".otf", ".otc"):
            return p
    where = configured or ", ".join(FONT_CANDIDATES)
    raise FontMissing(
        f"no CJK font found ({where}): install one (Debian: apt-get install fonts-noto-cjk, or run "
        f"infra/local/system-deps.sh python) or set {setting} to a .ttc/.ttf/.otf with Chinese glyphs"
    )


@lru_cache(maxsize=4)
def cjk_font(configured: str | None = None, setting: str = "ECG_CJK_FONT") -> tuple[str, str]:
    """(path, family) of the CJK font, registered with matplotlib (Simplified Chinese face preferred)."""
    from matplotlib import font_manager

    path = find_cjk_font(configured, setting)
    font_manager.fontManager.addfont(path)
    names = [e.name for e in font_manager.fontManager.ttflist if e.fname == path]
    if not names:
        raise FontMissing(f"{path} could not be loaded as a font; set {setting} to another CJK font")
    preferred = [n for n in names if n.endswith(" SC") or "CN" in n or "Hei" in n]
    return path, (preferred or names)[0]
