"""What the DICOMweb routers (dicomweb_stow.py, dicomweb_qido.py, dicomweb_wado.py) share: the archive of
the app, the public base URL for Retrieve URLs and BulkDataURIs, and DICOM JSON answers."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request
from fastapi.responses import Response

from common.storage import ObjectStore
from services.imaging.service import Archive
from services.imaging.settings import imaging_settings

PREFIX = "/dicom-web"
DICOM_JSON = "application/dicom+json"


def archive_of(request: Request) -> Archive:
    store: ObjectStore = request.app.state.store
    return Archive(request.app.state.db, store, imaging_settings())


def public_base(request: Request) -> str:
    """The URL the caller used to reach us (through the gateway: its X-Forwarded-Proto/Host).

    The forwarded headers are believed from any peer: they only shape URLs in the answer to the very request
    that carried them (no cache, no mail, no other user sees them), and the gateway may sit at any address.
    """
    host = request.headers.get("x-forwarded-host")
    if host:
        proto = request.headers.get("x-forwarded-proto", "http").split(",")[0].strip() or "http"
        return f"{proto}://{host.split(',')[0].strip()}"
    return str(request.base_url).rstrip("/")


def dicomweb_base(request: Request) -> str:
    return public_base(request) + PREFIX


def warning_headers(warnings: Sequence[str]) -> dict[str, str]:
    """PS3.18 8.4: ``Warning: 299 <agent>: <text>`` (one header, comma-joined)."""
    if not warnings:
        return {}
    texts = [w.replace(",", ";").encode("ascii", "replace").decode() for w in warnings]
    return {"Warning": ", ".join(f"299 telehealth-imaging: {t}" for t in texts)}


def dicom_json(body: bytes, *, status: int = 200, warnings: Sequence[str] = ()) -> Response:
    return Response(body, status_code=status, media_type=DICOM_JSON, headers=warning_headers(warnings))
