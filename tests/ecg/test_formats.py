"""Every sample file in the ECG development set parses into the expected recording.

Data: $ECG_DATA_DIR, default <repo>/../shared/data/ecg. A missing data directory fails the tests
(it is never a silent skip). Expected values come from ../shared/data/ecg/README.md and the files'
own headers.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io

from services.ecg.formats import (
    STANDARD_LEADS,
    FormatError,
    Recording,
    RecordTooLongError,
    detect_format,
    iter_chunks,
    normalize_lead_name,
    read,
)

# wfdb's annotation tables use a pandas idiom that pandas 3 deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")
REPO = Path(__file__).resolve().parents[2]
BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")  # README: reference beat symbols


@pytest.fixture(scope="module")
def data() -> Path:
    root = Path(os.environ.get("ECG_DATA_DIR") or REPO.parent / "shared" / "data" / "ecg").resolve()
    if not (root / "formats").is_dir():
        pytest.fail(f"ECG data directory {root} not found (set ECG_DATA_DIR to the shared ECG data set)")
    return root


# file (relative to formats/) -> format, leads, fs, samples, device measurements expected from the file
EXPECTED: dict[str, dict[str, Any]] = {
    "dicom/waveform_ecg.dcm": dict(
        format="dicom",
        leads=STANDARD_LEADS,
        fs=1000,
        samples=10_000,
        measurements=dict(
            rr_ms=982, pr_ms=161, qrs_ms=75, qt_ms=368, qtc_ms=370, p_axis_deg=74, qrs_axis_deg=52, t_axis_deg=57
        ),
        median_samples=1200,
    ),
    "hl7aecg/hl7_aecg_example_subject1_0.xml": dict(
        format="hl7_aecg",
        leads=STANDARD_LEADS,
        fs=500,
        samples=5000,
        measurements=dict(pr_ms=148, qrs_ms=120, qt_ms=420, qtc_ms=443, p_axis_deg=44, qrs_axis_deg=-61, t_axis_deg=86),
        median_samples=599,
    ),
    "scp/Example.scp": dict(
        format="scp",
        leads=STANDARD_LEADS,
        fs=500,
        samples=5000,
        measurements=dict(pr_ms=148, qrs_ms=120, qt_ms=420, qtc_ms=443, p_axis_deg=44, qrs_axis_deg=-61, t_axis_deg=86),
        median_samples=599,
    ),
    "scp/demo.scp": dict(format="scp", leads=("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"), fs=1000, samples=10_000),
    # README: 37 855 samples per lead. Section 3 declares that too, but section 6 stores only 32 767
    # per lead (65 534 bytes: the writer's 16-bit per-lead byte count); the reader says so in a warning.
    "scp/contec_0000050.scp": dict(
        format="scp", leads=STANDARD_LEADS, fs=800, samples=32_767, warning="section 3 declares 37855"
    ),
    "edf/contec_0000050.edf": dict(format="edf", leads=STANDARD_LEADS, fs=800, samples=37_855, warning="Contec ECG90A"),
    "edf/contec_0000050.csv": dict(format="csv", leads=STANDARD_LEADS, fs=800, samples=37_855, warning="Contec ECG90A"),
    "ishne/ECG_P28.01.ecg": dict(format="ishne", leads=STANDARD_LEADS, fs=1000, samples=95_573),
    "philips_xml/129DYPRG_v1.03.xml": dict(
        format="philips_xml",
        leads=STANDARD_LEADS,
        fs=500,
        samples=5500,
        measurements=dict(
            hr_bpm=41, pr_ms=151, qrs_ms=135, qt_ms=476, qtc_ms=393, p_axis_deg=66, qrs_axis_deg=-21, t_axis_deg=59
        ),
    ),
    "philips_xml/3191723_ZZDEMOPTONLY_v1.04.xml": dict(
        format="philips_xml",
        leads=STANDARD_LEADS,
        fs=500,
        samples=5500,
        measurements=dict(
            hr_bpm=84,
            rr_ms=714,
            pr_ms=144,
            qrs_ms=84,
            qt_ms=352,
            qtcb_ms=417,
            qtcf_ms=394,
            p_axis_deg=81,
            qrs_axis_deg=78,
            t_axis_deg=67,
        ),
        median_samples=600,
    ),
}
SIDECARS = {"ishne/ECG_P28.01.ann": "ishne/ECG_P28.01.ecg"}  # annotation files, read with their record


def test_every_sample_file_has_an_expectation(data: Path) -> None:
    files = {p.relative_to(data / "formats").as_posix() for p in (data / "formats").rglob("*") if p.is_file()}
    assert files, "no sample files found"
    assert files - set(EXPECTED) - set(SIDECARS) == set(), "a sample file has no expected values here"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_file_parses(data: Path, name: str) -> None:
    exp = EXPECTED[name]
    path = data / "formats" / name
    assert detect_format(path) == exp["format"]
    rec = read(path)
    assert isinstance(rec, Recording)
    assert rec.source_format == exp["format"]
    assert sorted(rec.lead_names) == sorted(exp["leads"])
    assert rec.fs == pytest.approx(exp["fs"])
    assert rec.n_samples == exp["samples"]
    assert rec.duration_s == pytest.approx(exp["samples"] / exp["fs"])
    assert rec.signal_mv.dtype == np.float32 and rec.signal_mv.shape == (exp["samples"], len(exp["leads"]))
    for key, value in exp.get("measurements", {}).items():
        assert rec.device_measurements.get(key) == value, key
    if "median_samples" in exp:
        assert rec.median_beats is not None
        assert rec.median_beats.signal_mv.shape == (exp["median_samples"], len(exp["leads"]))
    if "warning" in exp:
        assert any(exp["warning"] in w for w in rec.warnings), rec.warnings
    # physiological amplitude: some lead swings between 0.3 and 10 mV (catches unit errors of 10^3)
    recorded = rec.signal_mv[:, ~np.isnan(rec.signal_mv).all(axis=0)]
    ptp = np.nanmax(recorded, axis=0) - np.nanmin(recorded, axis=0)
    assert 0.3 < ptp.max() < 10, ptp
    assert rec.patient is not None and "Clark" not in repr(rec)


def test_statements_carried_over(data: Path) -> None:
    d = data / "formats"
    assert read(d / "dicom/waveform_ecg.dcm").device_measurements["statements"] == ["RITMO SINUSALE", "ECG NORMALE"]
    assert read(d / "hl7aecg/hl7_aecg_example_subject1_0.xml").device_measurements["statements"] == ["Sinus Rhythm"]
    old = read(d / "philips_xml/129DYPRG_v1.03.xml").device_measurements
    assert old["statements"][0] == "Sinus bradycardia (rate< 50)" and old["severity"] == "ABNORMAL ECG"
    new = read(d / "philips_xml/3191723_ZZDEMOPTONLY_v1.04.xml").device_measurements
    assert any("LEFT VENTRICULAR HYPERTROPHY" in s for s in new["statements"])


def test_device_and_patient_metadata(data: Path) -> None:
    d = data / "formats"
    dcm = read(d / "dicom/waveform_ecg.dcm")
    assert dcm.device.manufacturer == "Mortara Instrument, Inc." and dcm.patient["sex"] == "F"
    aecg = read(d / "hl7aecg/hl7_aecg_example_subject1_0.xml")
    assert aecg.device.model == "ELI250" and aecg.patient["birth_date"].isoformat() == "1953-05-08"
    scp = read(d / "scp/Example.scp")
    assert scp.device.model == "ELI250" and scp.patient["birth_date"].isoformat() == "1953-05-08"
    assert scp.start_time is not None and scp.start_time.isoformat() == "2002-11-22T09:10:00"
    philips = read(d / "philips_xml/3191723_ZZDEMOPTONLY_v1.04.xml")  # the UTF-16 file
    assert philips.device.model == "PageWriter Touch" and philips.patient["sex"] == "M"
    assert read(d / "edf/contec_0000050.edf").start_time.isoformat() == "2020-11-16T21:44:39"


def test_ishne_annotation_sidecar(data: Path) -> None:
    ann = data / "formats" / "ishne/ECG_P28.01.ann"
    with pytest.raises(FormatError, match="annotation file"):
        read(ann)
    rec = read(data / "formats" / SIDECARS["ishne/ECG_P28.01.ann"])
    assert Counter(a.label for a in rec.annotations) == {"N": 87, "X": 10}  # README: 97 marks
    assert rec.extra["resolution_nv"] == [5000.0] * 12  # README: 5 µV resolution


def test_contec_recording_same_in_scp_edf_csv(data: Path) -> None:
    """The README's cross-format recording: same fs, leads and samples.

    All three files carry the ECG90A's integer ADC counts at 5 µV per count (SCP: AVM 5000 nV; CSV:
    the export's counts; EDF: the counts, once the writer's wrong ±1000 mV calibration is undone), so
    the tolerance is half a count, 2.5 µV: anything larger is a decoding or scaling error, anything
    below is float32 rounding. The SCP holds only the first 32 767 samples (see EXPECTED).
    """
    d = data / "formats"
    scp, edf, csv = (
        read(d / "scp/contec_0000050.scp"),
        read(d / "edf/contec_0000050.edf"),
        read(d / "edf/contec_0000050.csv"),
    )
    assert scp.fs == edf.fs == csv.fs == 800
    assert scp.lead_names == edf.lead_names == csv.lead_names == list(STANDARD_LEADS)
    assert edf.n_samples == csv.n_samples == 37_855
    n = scp.n_samples
    limb = list(STANDARD_LEADS[:6])
    for lead in limb:
        np.testing.assert_allclose(edf.lead(lead), csv.lead(lead), rtol=0, atol=0.0025)
        np.testing.assert_allclose(scp.lead(lead), edf.lead(lead)[:n], rtol=0, atol=0.0025)
        assert np.ptp(scp.lead(lead)) > 0.5  # a real tracing, not two empty arrays agreeing
    # precordial electrodes were not attached: no signal in any of the three (zeros / empty cells)
    for lead in STANDARD_LEADS[6:]:
        assert not np.any(scp.lead(lead)) and not np.any(edf.lead(lead)) and np.isnan(csv.lead(lead)).all()


def test_scp_huffman_matches_aecg_of_the_same_ecg(data: Path) -> None:
    """Example.scp (default Huffman table, second differences, AVM 2.5 µV) is the Mortara aECG example
    (scale 2.5 µV): an independent format, so sample-exact agreement validates the SCP decoder."""
    scp = read(data / "formats/scp/Example.scp")
    aecg = read(data / "formats/hl7aecg/hl7_aecg_example_subject1_0.xml")
    for lead in STANDARD_LEADS:
        np.testing.assert_allclose(scp.lead(lead), aecg.lead(lead), rtol=0, atol=1e-6)
    assert scp.median_beats is not None and aecg.median_beats is not None
    order = [scp.median_beats.lead_names.index(n) for n in aecg.median_beats.lead_names]
    np.testing.assert_allclose(scp.median_beats.signal_mv[:, order], aecg.median_beats.signal_mv, atol=1e-6)


def test_wfdb_mitdb_record_with_beats(data: Path) -> None:
    rec = read(data / "mitdb" / "100")
    assert rec.lead_names == ["II", "V5"]  # MLII normalised
    assert rec.fs == 360 and rec.n_samples == 650_000
    assert rec.patient["age"] == 69 and rec.patient["sex"] == "M"
    beats = [a for a in rec.annotations if a.label in BEAT_SYMBOLS]
    assert len(beats) == 2273  # README: 2273 beats
    assert Counter(a.label for a in beats) == {"N": 2239, "A": 33, "V": 1}
    assert read(data / "mitdb" / "208.dat").lead_names == ["II", "V1"]


def test_wfdb_ludb_and_ptb(data: Path) -> None:
    rec = read(data / "ludb" / "1.hea")
    assert rec.lead_names == list(STANDARD_LEADS) and rec.fs == 500 and rec.n_samples == 5000
    assert 0.6 <= np.ptp(rec.lead("II")) <= 2.0  # README: lead II 0.6-2 mV after the gain fix
    assert rec.patient["age"] == 51 and rec.patient["sex"] == "F"
    ptb = read(data / "ptb" / "s0010_re")
    assert ptb.lead_names == [*STANDARD_LEADS, "X", "Y", "Z"] and ptb.fs == 1000 and ptb.duration_s == 38.4
    svdb = read(data / "svdb" / "800")
    assert svdb.lead_names == ["ECG", "ECG_2"] and svdb.fs == 128 and svdb.duration_s == 1800


def test_wfdb_cinc2017_mat_variant(data: Path) -> None:
    path = data / "cinc2017" / "A00001.mat"
    rec = read(path)
    assert detect_format(path) == "wfdb"
    assert rec.fs == 300 and rec.lead_names == ["ECG"] and rec.n_samples == 9000
    expected = scipy.io.loadmat(str(path))["val"][0] / 1000  # gain 1000 per mV, baseline 0
    np.testing.assert_allclose(rec.lead("ECG"), expected, atol=1e-6)
    assert rec.start_time is not None and rec.start_time.isoformat() == "2014-05-08T05:05:15"


@pytest.mark.parametrize("rel", ["mitdb/100", "formats/edf/contec_0000050.edf", "formats/ishne/ECG_P28.01.ecg"])
def test_iter_chunks_streams_long_formats(data: Path, rel: str) -> None:
    whole = read(data / rel)
    chunks = list(iter_chunks(data / rel, 30.0))
    assert [c.chunk_start for c in chunks] == list(range(0, whole.n_samples, round(30 * whole.fs)))
    assert all(c.record_samples == whole.n_samples and c.lead_names == whole.lead_names for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.signal_mv for c in chunks]), whole.signal_mv)
    rebased = [(a.sample + c.chunk_start, a.label) for c in chunks for a in c.annotations]
    assert rebased == [(a.sample, a.label) for a in whole.annotations]


def test_iter_chunks_for_short_formats_and_memory_guard(data: Path) -> None:
    chunks = list(iter_chunks(data / "formats/scp/Example.scp", 4))
    assert [c.n_samples for c in chunks] == [2000, 2000, 1000]
    with pytest.raises(RecordTooLongError, match="use iter_chunks"):
        read(data / "mitdb/100", max_signal_bytes=1_000_000)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("MLII", "II"),
        ("V1 ", "V1"),
        ("v5", "V5"),
        ("Lead I", "I"),
        ("Lead I (Einthoven)", "I"),
        ("MDC_ECG_LEAD_AVR", "aVR"),
        ("AVL", "aVL"),
        ("avf", "aVF"),
        ("VR", "aVR"),
        ("aVR(Goldberger)", "aVR"),
        ("DIII", "III"),
        ("iii", "III"),
        ("-aVR", "-aVR"),
        ("V4R", "V4R"),
        ("vx", "X"),
        ("ECG", "ECG"),
        ("", "?"),
    ],
)
def test_normalize_lead_name(raw: str, expected: str) -> None:
    assert normalize_lead_name(raw) == expected


def test_dicom_general_ecg_in_millivolts(tmp_path: Path, data: Path) -> None:
    """General ECG SOP class, channel sensitivity in mV instead of uV: same tracing in mV."""
    import pydicom

    src = data / "formats/dicom/waveform_ecg.dcm"
    ds = pydicom.dcmread(str(src))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.9.1.2"
    for channel in ds.WaveformSequence[0].ChannelDefinitionSequence:
        channel.ChannelSensitivity = "0.00125"
        channel.ChannelSensitivityUnitsSequence[0].CodeValue = "mV"
    path = tmp_path / "general.dcm"
    ds.save_as(str(path))
    rec, ref = read(path), read(src)
    assert rec.extra["sop_class"] == "General ECG"
    np.testing.assert_allclose(rec.signal_mv, ref.signal_mv, atol=1e-6)
