"""``python -m bench.ecg``: run the ECG benchmark once and write bench/results/ecg.md and ecg.json."""

from __future__ import annotations

import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: the machine is shared (set before numpy loads)

from bench.ecg.report import write  # noqa: E402
from bench.ecg.run import run_all  # noqa: E402


def main() -> int:
    res = run_all()
    md, js = write(res)
    print(md.read_text(encoding="utf-8"))
    print(f"wrote {md} and {js}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
