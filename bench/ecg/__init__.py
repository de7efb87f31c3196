"""ECG analysis benchmark against wfdb XQRS and neurokit2 on ../shared/data/ecg (``python -m bench.ecg``)."""
