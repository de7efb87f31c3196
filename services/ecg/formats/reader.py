"""``read`` and ``iter_chunks``: the entry points, dispatching on the sniffed format."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from services.ecg.formats.csv_reader import read_csv
from services.ecg.formats.dicom import read_dicom
from services.ecg.formats.edf import open_edf
from services.ecg.formats.hl7_aecg import read_hl7_aecg
from services.ecg.formats.ishne import open_ishne
from services.ecg.formats.model import FormatError, Recording, RecordTooLongError
from services.ecg.formats.philips import read_philips
from services.ecg.formats.scp import read_scp
from services.ecg.formats.sniff import detect_format
from services.ecg.formats.source import Source, chunk_whole
from services.ecg.formats.wfdb_reader import open_wfdb

# whole-file readers (short, resting ECG formats) and range-readable openers (long formats)
READERS: dict[str, Callable[[Path], Recording]] = {
    "scp": read_scp,
    "dicom": read_dicom,
    "hl7_aecg": read_hl7_aecg,
    "philips_xml": read_philips,
    "csv": read_csv,
}
OPENERS: dict[str, Callable[[Path], Source]] = {"wfdb": open_wfdb, "edf": open_edf, "ishne": open_ishne}
FORMATS: tuple[str, ...] = (*READERS, *OPENERS)

# float32 signal budget of read(): 1 GiB is e.g. 24 h x 3 leads x 1 kHz; longer goes through iter_chunks
DEFAULT_MAX_SIGNAL_BYTES = 1 << 30


def _format(path: Path, fmt: str | None) -> str:
    if fmt is None:
        return detect_format(path)
    if fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}; supported: {', '.join(FORMATS)}")
    return fmt


def _guard(fmt: str, call: Callable[[], Recording]) -> Recording:
    try:
        return call()
    except (FormatError, FileNotFoundError, MemoryError, StopIteration):
        raise
    except Exception as exc:  # a parser tripping over corrupt input: still a format error, with the cause
        raise FormatError(f"corrupt {fmt} file: {type(exc).__name__}: {exc}") from exc


def _open(path: Path, fmt: str) -> Source:
    try:
        return OPENERS[fmt](path)
    except (FormatError, FileNotFoundError, MemoryError):
        raise
    except Exception as exc:
        raise FormatError(f"corrupt {fmt} file: {type(exc).__name__}: {exc}") from exc


def read(path: str | Path, *, format: str | None = None, max_signal_bytes: int = DEFAULT_MAX_SIGNAL_BYTES) -> Recording:
    """Read a whole ECG file into a ``Recording`` (format sniffed from content unless given).

    Raises ``FormatError`` (a ``ValueError``) with a human reason for unsupported or corrupt files,
    and ``RecordTooLongError`` when the signal would exceed ``max_signal_bytes`` as float32 - read such
    records with ``iter_chunks``.
    """
    p = Path(path)
    fmt = _format(p, format)
    if fmt in READERS:
        return _guard(fmt, lambda: READERS[fmt](p))
    src = _open(p, fmt)
    try:
        need = src.n_samples * src.n_leads * 4
        if need > max_signal_bytes:
            raise RecordTooLongError(
                f"record too long to read whole: {src.n_samples} samples x {src.n_leads} leads "
                f"({need / 2**20:.0f} MiB); use iter_chunks"
            )
        return _guard(fmt, src.whole)
    finally:
        src.close()


def iter_chunks(path: str | Path, seconds: float, *, format: str | None = None) -> Iterator[Recording]:
    """Yield consecutive chunks of about ``seconds`` each as ``Recording`` objects.

    Each chunk carries the file's metadata, ``chunk_start`` (its first sample's index in the record)
    and ``record_samples`` (the record's length). WFDB, EDF and ISHNE are read chunk by chunk from disk
    (bounded memory); the other formats are short by nature and are read whole, then sliced.
    """
    p = Path(path)
    fmt = _format(p, format)
    if fmt in READERS:
        yield from chunk_whole(read(p, format=fmt), seconds)
        return
    src = _open(p, fmt)
    try:
        chunks = src.chunks(seconds)
        while True:
            try:
                chunk = _guard(fmt, lambda: next(chunks))
            except StopIteration:
                return
            yield chunk
    finally:
        src.close()
