"""From uploaded files on local disk to a parsed recording and its compact signal (no HTTP, no SQL).

An upload is one file, a WFDB ``.hea`` with its signal files, or a ``.zip`` holding either. The files are
staged in a private temporary directory under their (sanitised) names, because a WFDB header names its
signal files. ``parse_staged`` reads the recording with ``services.ecg.formats`` (whole, or in chunks when
the signal is large) and writes the compact int16 signal next to it. Everything here is synchronous and
CPU-bound: the service runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from common.errors import Invalid, PayloadTooLarge
from services.ecg.formats import FormatError, Recording, RecordTooLongError, iter_chunks, read
from services.ecg.schemas import SignalLayout
from services.ecg.settings import EcgSettings
from services.ecg.signal_store import gains_for, max_abs, write_npy

_SAFE = re.compile(r"[^A-Za-z0-9._\-]+")
# Files that travel with a recording but are not one (annotations, notes).
_SIDECARS = {".atr", ".ann", ".txt", ".md", ".json", ".xyz", ".qrs"}
_CONTENT_TYPES = {
    ".xml": "application/xml",
    ".csv": "text/csv",
    ".hea": "text/plain",
    ".dcm": "application/dicom",
    ".zip": "application/zip",
}
# Keys of Recording.patient that may be kept with the recording: demographics that identify nobody.
_FILE_PATIENT_KEYS = ("age", "sex")


@dataclass
class StagedFile:
    name: str
    path: Path
    size: int
    sha256: str
    content_type: str


@dataclass
class ParsedUpload:
    """What ingest learned from the files; ``signal_path`` holds the compact signal to store."""

    source_format: str
    fs: float
    lead_names: list[str]
    n_samples: int
    start_time: datetime | None
    device: dict[str, Any]
    device_measurements: dict[str, Any]
    file_patient: dict[str, Any]
    warnings: list[str]
    signal_path: Path
    layout: SignalLayout
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs


def safe_name(name: str | None, taken: set[str]) -> str:
    """A plain file name (no directories, no odd characters), unique among ``taken``."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _SAFE.sub("_", base).strip("._") or "upload"
    base = base[-120:]
    candidate, k = base, 2
    while candidate.lower() in taken:
        stem, dot, suffix = base.rpartition(".")
        candidate = f"{stem}_{k}.{suffix}" if dot else f"{base}_{k}"
        k += 1
    taken.add(candidate.lower())
    return candidate


def content_type_for(name: str, declared: str | None) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    if declared and "/" in declared and len(declared) < 100:
        return declared
    return "application/octet-stream"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


class UploadedFile(Protocol):
    """What a multipart file part offers (starlette's UploadFile)."""

    @property
    def filename(self) -> str | None: ...

    @property
    def content_type(self) -> str | None: ...

    async def read(self, size: int = -1, /) -> bytes: ...


async def stage_uploads(files: Sequence[UploadedFile], into: Path) -> list[StagedFile]:
    """Copy uploaded parts to ``into`` under safe names, hashing on the way (chunk by chunk)."""
    if not files:
        raise Invalid("no file uploaded: send the ECG as the multipart field 'file'")
    await asyncio.to_thread(into.mkdir, parents=True, exist_ok=True)
    taken: set[str] = set()
    out = []
    for f in files:
        name = safe_name(f.filename, taken)
        path = into / name
        digest, size = hashlib.sha256(), 0
        fh = await asyncio.to_thread(path.open, "wb")
        try:
            while chunk := await f.read(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(fh.write, chunk)
        finally:
            await asyncio.to_thread(fh.close)
        if size == 0:
            raise Invalid(f"the uploaded file {name} is empty")
        out.append(StagedFile(name, path, size, digest.hexdigest(), content_type_for(name, f.content_type)))
    return out


def is_zip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def unpack_zip(archive: Path, into: Path, settings: EcgSettings) -> list[Path]:
    """Extract a zip's regular files flat into ``into`` (names sanitised), refusing bombs and oddities."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
            if not members:
                raise Invalid("the zip archive is empty")
            if len(members) > settings.max_zip_members:
                raise Invalid(f"the zip archive holds {len(members)} files; at most {settings.max_zip_members}")
            if sum(m.file_size for m in members) > settings.max_unzipped_bytes:
                raise PayloadTooLarge(f"the zip archive unpacks to more than {settings.max_unzipped_bytes} bytes")
            into.mkdir(parents=True, exist_ok=True)
            taken: set[str] = set()
            out = []
            budget = settings.max_unzipped_bytes
            for m in members:
                target = into / safe_name(m.filename, taken)
                with zf.open(m) as src, target.open("wb") as dst:
                    while chunk := src.read(1024 * 1024):
                        budget -= len(chunk)
                        if budget < 0:  # sizes in the directory can lie
                            raise PayloadTooLarge("the zip archive unpacks to more than declared")
                        dst.write(chunk)
                out.append(target)
            return out
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise Invalid(f"corrupt zip archive: {exc}") from exc


def choose_main(files: list[Path]) -> Path:
    """The file to read: the single .hea of a WFDB record, else the single recording file."""
    headers = [p for p in files if p.suffix.lower() == ".hea"]
    if len(headers) > 1:
        raise Invalid(f"upload one recording at a time: found {len(headers)} WFDB headers")
    if headers:
        return headers[0]
    candidates = [p for p in files if p.suffix.lower() not in _SIDECARS]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise Invalid("no ECG recording among the uploaded files (only annotations or notes)")
    raise Invalid(
        f"{len(candidates)} files uploaded: send one ECG file, a WFDB .hea with its .dat/.mat, or a .zip of them"
    )


def reading_dir(staged: list[StagedFile], work: Path, settings: EcgSettings) -> Path:
    """The file ``formats.read`` gets: unzips a single .zip upload into ``work/unzipped``."""
    if len(staged) == 1 and is_zip(staged[0].path):
        return choose_main(unpack_zip(staged[0].path, work / "unzipped", settings))
    return choose_main([s.path for s in staged])


def _meta(rec: Recording) -> dict[str, Any]:
    device = {k: v for k, v in vars(rec.device).items() if v}
    return {
        "source_format": rec.source_format,
        "fs": float(rec.fs),
        "lead_names": list(rec.lead_names),
        "start_time": rec.start_time,
        "device": device,
        "device_measurements": _jsonable(rec.device_measurements),
        "file_patient": {k: rec.patient[k] for k in _FILE_PATIENT_KEYS if rec.patient.get(k) is not None},
        "warnings": [str(w) for w in rec.warnings][:50],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def parse_staged(main: Path, signal_path: Path, settings: EcgSettings) -> ParsedUpload:
    """Read the recording at ``main`` and write its compact signal to ``signal_path``.

    Raises ``Invalid`` (422) with the reader's reason when the file is unsupported or corrupt.
    """
    try:
        try:
            rec = read(main, max_signal_bytes=settings.whole_read_max_bytes)
        except RecordTooLongError:
            return _parse_chunked(main, signal_path, settings)
        if rec.n_samples == 0 or rec.n_leads == 0:
            raise Invalid("the recording holds no samples")
        gains = gains_for(max_abs(rec.signal_mv))
        with signal_path.open("wb") as out:
            layout = write_npy(out, [rec.signal_mv], rec.n_samples, gains)
        return ParsedUpload(n_samples=rec.n_samples, signal_path=signal_path, layout=layout, **_meta(rec))
    except FormatError as exc:
        raise Invalid(f"not a readable ECG recording: {exc}", code="unreadable_ecg") from exc
    except (FileNotFoundError, MemoryError) as exc:
        raise Invalid(f"not a readable ECG recording: {type(exc).__name__}: {exc}", code="unreadable_ecg") from exc


def _parse_chunked(main: Path, signal_path: Path, settings: EcgSettings) -> ParsedUpload:
    """Long records: one pass for the per-lead range, one to write; memory stays at one chunk."""
    seconds = settings.ingest_chunk_seconds
    first: Recording | None = None
    peak: np.ndarray | None = None
    samples = 0
    for chunk in iter_chunks(main, seconds):
        first = first or chunk
        m = max_abs(chunk.signal_mv)
        peak = m if peak is None else np.maximum(peak, m)
        samples += chunk.n_samples
    if first is None or peak is None or samples == 0:
        raise Invalid("the recording holds no samples")
    gains = gains_for(peak)
    with signal_path.open("wb") as out:
        layout = write_npy(out, (c.signal_mv for c in iter_chunks(main, seconds)), samples, gains)
    return ParsedUpload(n_samples=samples, signal_path=signal_path, layout=layout, **_meta(first))
