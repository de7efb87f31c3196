"""ST deviation per lead at J+60 ms on the median beat, and the STEMI-pattern flag.

Thresholds (4th Universal Definition of MI, 2018): new ST elevation at the J point in two contiguous leads of
>= 0.1 mV in all leads other than V2-V3; in V2-V3 >= 0.2 mV (men >= 40 y), >= 0.25 mV (men < 40 y),
>= 0.15 mV (women).  Without sex/age the V2-V3 threshold is 0.2 mV (the simple, sex/age-independent rule
asked for); when both are given the specific one is used.  The deviation is read at J+60 ms against the
PR-segment baseline.  Paced rhythms are not assessed; with a wide QRS only elevation concordant with a
positive QRS counts (Sgarbossa), since discordant ST shifts are expected in bundle-branch block.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import pairwise

import numpy as np

# contiguous lead groups (anatomical): any two leads of a group, or two neighbouring precordial leads
_GROUPS: dict[str, tuple[str, ...]] = {
    "inferior": ("II", "III", "aVF"),
    "lateral": ("I", "aVL", "V5", "V6"),
    "septal": ("V1", "V2"),
    "anterior": ("V3", "V4"),
}
_PRECORDIAL = ("V1", "V2", "V3", "V4", "V5", "V6")
_TERRITORY = {"V1": "septal", "V2": "septal", "V3": "anterior", "V4": "anterior", "V5": "lateral", "V6": "lateral"}


@dataclass
class StemiResult:
    flag: bool
    assessable: bool
    leads: list[str] = field(default_factory=list)
    territories: list[str] = field(default_factory=list)
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def st_deviation(
    template: np.ndarray, fs: float, r: int, fid: dict[str, int | None], lead_names: list[str], at_ms: float = 60.0
) -> dict[str, dict[str, float]]:
    """Per lead: ST level at J and at J+at_ms (mV, relative to the PR-segment baseline)."""
    q_on, j = fid.get("qrs_on"), fid.get("qrs_off")
    if q_on is None or j is None:
        return {}
    ms = fs / 1000.0
    w = template.shape[0]
    base = template[max(q_on - int(20 * ms), 0) : q_on + 1].mean(axis=0)
    half = max(int(4 * ms), 1)
    out: dict[str, dict[str, float]] = {}
    for k, name in enumerate(lead_names):
        jj = min(j, w - 1)
        j60 = min(j + int(at_ms * ms), w - 1)
        st_j = float(template[max(jj - half, 0) : jj + half + 1, k].mean() - base[k])
        st_60 = float(template[max(j60 - half, 0) : j60 + half + 1, k].mean() - base[k])
        qrs_net = float((template[q_on : jj + 1, k] - base[k]).mean())
        out[name] = {"st_j_mv": round(st_j, 3), "st_j60_mv": round(st_60, 3), "qrs_net_mv": round(qrs_net, 3)}
    return out


def _threshold(lead: str, sex: str | None, age: float | None) -> float:
    if lead not in ("V2", "V3"):
        return 0.1
    if sex is None or age is None:
        return 0.2
    s = sex.strip().lower()[:1]
    if s == "f":
        return 0.15
    return 0.2 if age >= 40 else 0.25


def stemi_pattern(
    st: dict[str, dict[str, float]],
    qrs_ms: float | None,
    sex: str | None = None,
    age: float | None = None,
    usable: dict[str, bool] | None = None,
    key: str = "st_j60_mv",
    paced: bool = False,
) -> StemiResult:
    """STEMI pattern: ST elevation over threshold in two contiguous usable leads."""
    if not st:
        return StemiResult(False, False, reason="no ST measurement")
    if paced:
        return StemiResult(False, False, reason="paced rhythm: ST criteria not applicable")
    ok = usable or {}
    # with a wide QRS (bundle-branch block) ST shifts opposite to the QRS are expected; only elevation
    # concordant with a positive QRS counts (Sgarbossa's concordance criterion)
    wide = qrs_ms is not None and qrs_ms >= 120
    elevated = {
        lead
        for lead, v in st.items()
        if ok.get(lead, True) and v[key] >= _threshold(lead, sex, age) and (not wide or v.get("qrs_net_mv", 1) > 0)
    }
    hits: set[str] = set()
    terr: set[str] = set()
    for name, group in _GROUPS.items():
        g = [lead for lead in group if lead in elevated]
        if len(g) >= 2:
            hits.update(g)
            terr.add(name)
    for a, b in pairwise(_PRECORDIAL):
        if a in elevated and b in elevated:
            hits.update((a, b))
            terr.update({_TERRITORY[a], _TERRITORY[b]})
    leads = sorted(hits, key=lambda s: list(st).index(s) if s in st else 99)
    return StemiResult(bool(hits), True, leads, sorted(terr))
