"""The analysis job behind the ``ecg.analyze_recording`` task: reload, analyse, store, raise critical values.

Idempotent: the analysis row is written once (``ON CONFLICT DO NOTHING``) together with the status, the
``ecg.analysis_completed`` event and, when the analysis raised critical findings, the one alert of the
recording and its ``ecg.critical_value`` event. Publishing the alert happens after that commit and is
remembered (``published_at``), so a redelivered task publishes an alert that was never published and
nothing twice. Critical findings come from the analysis, which gates them by signal quality.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import redis.asyncio as aioredis

from common.auth import system_principal
from common.db import Database
from common.events import record_event
from common.storage import ObjectStore
from services.ecg import alerts
from services.ecg import repository as repo
from services.ecg.formats import Recording
from services.ecg.schemas import SignalLayout
from services.ecg.settings import EcgSettings, ecg_settings
from services.ecg.signal_store import decode, iter_local, open_local

log = logging.getLogger("telehealth.ecg.analysis")


def _as_dict(value: Any) -> dict[str, Any]:
    if hasattr(value, "to_dict"):
        out: dict[str, Any] = value.to_dict()
        return out
    if isinstance(value, dict):
        return value
    raise TypeError(f"analysis result of type {type(value).__name__} is not JSON-serialisable")


def machine_reading(
    recording: Recording, sex: str | None = None, age: float | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(analysis, critical findings) of a short recording, by the analysis package."""
    from services.ecg import analysis as engine

    return _reading(engine, engine.analyze(recording, sex=sex, age=age))


def long_reading(
    chunks: Iterator[np.ndarray], fs: float, lead_names: list[str], sex: str | None = None, age: float | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary analysis, critical findings) of a long record, chunk by chunk (bounded memory)."""
    from services.ecg import analysis as engine

    return _reading(engine, engine.analyze_long(chunks, fs, lead_names, sex=sex, age=age))


def _reading(engine: Any, result: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    critical_values = getattr(engine, "critical_values", None)
    findings = critical_values(result) if critical_values is not None else getattr(result, "critical", [])
    analysis = _as_dict(result)
    return analysis, [_as_dict(f) for f in findings]


def engine_version(analysis: dict[str, Any]) -> str:
    return str(analysis.get("version") or "ecg-analysis")


async def download(store: ObjectStore, key: str, target: Path) -> None:
    with target.open("wb") as out:
        async for chunk in store.get(key):
            out.write(chunk)


def _recording(row: Any, signal: Any) -> Recording:
    return Recording(fs=float(row["fs"]), lead_names=list(row["lead_names"]), signal_mv=signal,
                     source_format=row["source_format"], start_time=row["start_time"])


def demographics(file_patient: dict[str, Any] | None) -> tuple[str | None, float | None]:
    """(sex "M"/"F", age in years) the file stated, for sex- and age-specific thresholds (STEMI)."""
    fp = file_patient or {}
    sex = {"m": "M", "male": "M", "f": "F", "female": "F"}.get(str(fp.get("sex", "")).lower())
    age = fp.get("age")
    return sex, float(age) if isinstance(age, int | float) and not isinstance(age, bool) else None


def run_reading(row: Any, path: Path, layout: SignalLayout, settings: EcgSettings) -> tuple[dict[str, Any], list[Any]]:
    fs = float(row["fs"])
    sex, age = demographics(row["file_patient"])
    if layout.samples / fs <= settings.long_record_seconds:
        signal = decode(open_local(path, layout), layout)
        return machine_reading(_recording(row, signal), sex, age)
    step = max(1, round(settings.analysis_chunk_seconds * fs))
    chunks = (np.nan_to_num(part) for _, part in iter_local(path, layout, step))
    return long_reading(chunks, fs, list(row["lead_names"]), sex, age)


async def analyze_recording(
    db: Database, store: ObjectStore, redis: aioredis.Redis, recording_id: UUID, settings: EcgSettings | None = None
) -> dict[str, Any]:
    """Run (or finish) the analysis of one recording; safe to repeat."""
    s = settings or ecg_settings()
    system = system_principal()
    async with db.transaction(system) as conn:
        row = await repo.job_recording(conn, recording_id)
        if row is None:
            return {"recording_id": str(recording_id), "status": "missing"}
        if row["analysed"]:
            done = True
        else:
            done = False
            await repo.set_status(conn, recording_id, "analysing")
    if done:
        await alerts.deliver_pending(db, redis, system, recording_id)
        return {"recording_id": str(recording_id), "status": "already_analysed"}

    layout = SignalLayout(**row["signal_layout"])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ecg-analysis-") as work:
        path = Path(work) / "signal.npy"
        await download(store, row["signal_key"], path)
        try:
            analysis, findings = run_reading(row, path, layout, s)
        except Exception as exc:  # the engine failed on this signal: say so, keep the recording readable
            log.exception("analysis failed", extra={"recording_id": str(recording_id)})
            async with db.transaction(system) as conn:
                await repo.set_status(conn, recording_id, "failed", error=f"{type(exc).__name__}: {exc}"[:500])
            return {"recording_id": str(recording_id), "status": "failed"}
    elapsed_ms = (time.perf_counter() - started) * 1000

    async with db.transaction(system) as conn:
        inserted = await repo.insert_analysis(
            conn, recording_id, row["facility_id"], analysis, findings, engine_version(analysis), elapsed_ms
        )
        if inserted:
            await repo.mark_analysed(conn, recording_id, critical=bool(findings))
            rhythm = analysis.get("rhythm") or {}
            await record_event(
                conn, "ecg", "ecg.analysis_completed", facility_id=row["facility_id"], subject_type="recording",
                subject_id=recording_id,
                payload={"rhythm": rhythm.get("rhythm") if isinstance(rhythm, dict) else None,
                         "critical": bool(findings), "findings": [f.get("code") for f in findings],
                         "elapsed_ms": round(elapsed_ms, 1), "engine": engine_version(analysis)},
            )
            if findings:
                await alerts.raise_alert(conn, row, findings)
    try:
        await alerts.deliver_pending(db, redis, system, recording_id)
    except Exception:  # the alert is stored and listed; the escalation beat publishes it once Redis is back
        log.exception("publishing a critical value failed", extra={"recording_id": str(recording_id)})
    return {"recording_id": str(recording_id), "status": "ready", "critical": [f.get("code") for f in findings]}
