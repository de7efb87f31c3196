"""The documented CSV dialect (docs/ecg-csv-format.md): what is accepted and what is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.ecg.formats import FormatError, detect_format, read


def write(tmp_path: Path, text: str, name: str = "ecg.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_header_units_fs_comment_and_empty_cells(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# exported by cart 7\n# fs=500, units=uV start=2026-03-01T08:15:00+08:00\n"
        "MLII,V1 (mV),avr\n100,0.5,-50\n200,,-100\n300,0.7,-150\n",
    )
    rec = read(path)
    assert detect_format(path) == "csv"
    assert rec.lead_names == ["II", "V1", "aVR"] and rec.fs == 500 and rec.n_samples == 3
    np.testing.assert_allclose(rec.lead("II"), [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(rec.lead("V1"), [0.5, np.nan, 0.7], rtol=1e-6)  # per-column unit wins
    assert rec.start_time is not None and rec.start_time.utcoffset() is not None


@pytest.mark.parametrize(("time_header", "step"), [("time_ms", "4"), ("time (s)", "0.004"), ("t", "0.004")])
def test_time_column_gives_fs(tmp_path: Path, time_header: str, step: str) -> None:
    rows = "\n".join(f"{i * float(step):g};{i};{-i}" for i in range(50))
    rec = read(write(tmp_path, f"{time_header};I [mV];II [mV]\n{rows}\n"))
    assert rec.fs == pytest.approx(250) and rec.lead_names == ["I", "II"]
    np.testing.assert_allclose(rec.lead("II"), -np.arange(50))


def test_tab_delimited_utf16(tmp_path: Path) -> None:
    path = write(tmp_path, "# fs=250\nI (uV)\tII (uV)\n1000\t2000\n1100\t2100\n", encoding="utf-16")
    rec = read(path)
    np.testing.assert_allclose(rec.signal_mv, [[1.0, 2.0], [1.1, 2.1]], rtol=1e-6)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("I,II\n1,2\n3,4\n", "has no unit"),
        ("I (mV),II (mV)\n1,2\n3,4\n", "sampling rate unknown"),
        ("# fs=500\nI (mV),II (mV)\n1,2\n3\n", r"row 4 has 1 fields, the header has 2"),
        ("# fs=500\nI (mV),II (mV)\n1,2\n3,abc\n", r"row 4, column 2: 'abc' is not a number"),
        ("# fs=500\nI (furlongs),II (mV)\n1,2\n3,4\n", "not a voltage"),
        ("time_ms,I (mV)\n0,1\n2,1\n7,1\n", "not uniformly sampled"),
        ("# fs=500\ntime_ms,I (mV)\n0,1\n4,1\n8,1\n", "disagrees with its time column"),
        ("# fs=500\n1,2,3\n4,5,6\n", "no header row of lead names"),
        ("1.5,2,3,4,5,6,7,8,9,10,11,12\n", "non-integer"),
    ],
)
def test_refused_with_reason(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(FormatError, match=reason):
        read(write(tmp_path, text))


def test_contec_headerless_dialect(tmp_path: Path) -> None:
    rows = "\n".join(",".join([str(i), str(2 * i), str(i), str(-i), "0", str(i)] + [""] * 6) for i in range(10))
    rec = read(write(tmp_path, rows + "\n"))
    assert rec.fs == 800 and rec.n_samples == 10 and rec.extra["csv_dialect"] == "contec-ecg90a"
    np.testing.assert_allclose(rec.lead("II"), np.arange(10) * 2 * 0.005, rtol=1e-6)
    assert np.isnan(rec.lead("V6")).all()
    assert any("Contec" in w for w in rec.warnings)
