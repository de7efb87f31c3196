"""Content hashes of signed documents (ECG, imaging and pathology reports, their addenda).

``canonical_sha256`` hashes a JSON-able mapping with sorted keys (orjson), so the same content always gives
the same digest and anyone can recompute it from the stored fields.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson


def canonical_sha256(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``body`` as canonical JSON (keys sorted, UTF-8)."""
    return hashlib.sha256(orjson.dumps(dict(body), option=orjson.OPT_SORT_KEYS)).hexdigest()
