"""The imaging service's FastAPI app: ``uvicorn services.imaging.app:app``."""

from __future__ import annotations

from common.app import create_service_app
from common.services import service
from services.imaging.api import router

SPEC = service("imaging")

app = create_service_app(
    SPEC.name,
    title=SPEC.title,
    description="DICOMweb and DIMSE archive, viewer, reading worklist and signed reports.",
    routers=[router],
)
