"""The health-management service's FastAPI app: ``uvicorn services.health_mgmt.app:app``."""

from __future__ import annotations

from common.app import create_service_app
from common.services import service
from services.health_mgmt.api import router

SPEC = service("health_mgmt")

app = create_service_app(
    SPEC.name,
    title=SPEC.title,
    description="Patient register, chronic-disease follow-up (hypertension, type 2 diabetes) and FHIR R4.",
    routers=[router],
)
