"""ECG file readers: every interchange format normalised into one ``Recording``.

    from services.ecg.formats import read, iter_chunks, FormatError
    rec = read("tracing.scp")            # format sniffed from content
    rec.fs, rec.lead_names, rec.signal_mv  # Hz, ["I", "II", ...], samples x leads float32 mV

Formats: SCP-ECG, DICOM ECG waveforms, HL7 aECG, Philips Sierra XML, CSV (docs/ecg-csv-format.md),
WFDB (.hea/.dat, .hea/.mat), EDF/EDF+/BDF, ISHNE Holter. Long records (WFDB, EDF, ISHNE) stream
through ``iter_chunks(path, seconds)``. ``Recording.patient`` holds identifiers: never log it.
"""

from services.ecg.formats.model import (
    MEASUREMENT_KEYS,
    STANDARD_LEADS,
    Annotation,
    Device,
    FormatError,
    MedianBeats,
    Recording,
    RecordTooLongError,
    normalize_lead_name,
)
from services.ecg.formats.reader import DEFAULT_MAX_SIGNAL_BYTES, FORMATS, iter_chunks, read
from services.ecg.formats.sniff import detect_format

__all__ = [
    "DEFAULT_MAX_SIGNAL_BYTES",
    "FORMATS",
    "MEASUREMENT_KEYS",
    "STANDARD_LEADS",
    "Annotation",
    "Device",
    "FormatError",
    "MedianBeats",
    "RecordTooLongError",
    "Recording",
    "detect_format",
    "iter_chunks",
    "normalize_lead_name",
    "read",
]
