"""ECG analysis as pure, importable functions.

from services.ecg.analysis import analyze, detect_qrs, measure_intervals, critical_values, analyze_long
a = analyze(recording)            # anything with fs, lead_names, signal_mv (samples x leads, mV)
a.to_dict()                        # JSON-native
detect_qrs(signal_mv, fs)          # sample indices (1-D or samples x leads, 128 Hz .. 1 kHz and beyond)
measure_intervals(x, fs, names)    # global PR/QRS/QT/QTc/axes on the 12-lead median beat
"""

from services.ecg.analysis.beats import classify_beats, rr_statistics
from services.ecg.analysis.critical import critical_values
from services.ecg.analysis.filters import diagnostic_filter, lead_quality, notch, remove_baseline
from services.ecg.analysis.intervals import bazett, fridericia, measure_intervals
from services.ecg.analysis.long import analyze_long
from services.ecg.analysis.models import Analysis, CriticalFinding, Statement
from services.ecg.analysis.pipeline import analyze
from services.ecg.analysis.qrs import detect_qrs

__all__ = [
    "Analysis",
    "CriticalFinding",
    "Statement",
    "analyze",
    "analyze_long",
    "bazett",
    "classify_beats",
    "critical_values",
    "detect_qrs",
    "diagnostic_filter",
    "fridericia",
    "lead_quality",
    "measure_intervals",
    "notch",
    "remove_baseline",
    "rr_statistics",
]
