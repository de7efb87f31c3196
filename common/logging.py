"""JSON logs, one object a line, prefixed by nothing: the process manager adds the process name.

Patient identifiers never reach a log: log ids only. As a second wall, string values under keys that
name personal data are replaced, and 18-digit resident ID numbers and mainland mobile numbers in
messages are masked.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

_SENSITIVE_KEYS = frozenset(
    {"name", "patient_name", "id_number", "national_id", "phone", "mobile", "address", "birth_date",
     "password", "token", "access_token", "refresh_token", "totp", "otp", "authorization"}
)
_ID_CARD = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "color_message"}
# Chatty at INFO: one line per received and finished task, every few seconds for the outbox relays.
_QUIET = ("celery.worker.strategy", "celery.app.trace", "celery.beat")


def mask(text: str) -> str:
    """Mask resident ID numbers and mobile numbers in free text."""
    return _MOBILE.sub("1**********", _ID_CARD.sub("******************", text))


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str):
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask(record.getMessage()),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key in _STANDARD or key.startswith("_"):
                continue
            if key in _SENSITIVE_KEYS:
                value = "[redacted]"
            elif isinstance(value, str):
                value = mask(value)
            entry[key] = value
        if record.exc_info:
            entry["exc"] = mask(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(process: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints full URLs (query strings may carry names): ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
