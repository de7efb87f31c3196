"""The pathology service's FastAPI app: ``uvicorn services.pathology.app:app``."""

from __future__ import annotations

from common.app import create_service_app
from common.services import service
from services.pathology.api import router

SPEC = service("pathology")

app = create_service_app(
    SPEC.name,
    title=SPEC.title,
    description="Whole-slide images: ingest, DeepZoom and IIIF tiles, annotations and reports.",
    routers=[router],
)
