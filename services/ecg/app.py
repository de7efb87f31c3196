"""The ecg service's FastAPI app: ``uvicorn services.ecg.app:app``."""

from __future__ import annotations

from common.app import create_service_app
from common.services import service
from services.ecg.api import router

SPEC = service("ecg")

app = create_service_app(
    SPEC.name,
    title=SPEC.title,
    description="ECG ingest in every interchange format, automatic analysis, critical values and signed reports.",
    routers=[router],
)
