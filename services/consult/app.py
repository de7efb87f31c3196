"""The consult service's FastAPI app: ``uvicorn services.consult.app:app``."""

from __future__ import annotations

from common.app import create_service_app
from common.services import service
from services.consult.api import router

SPEC = service("consult")

app = create_service_app(
    SPEC.name,
    title=SPEC.title,
    description="Consult workflow with consent and deadlines, chat and video rooms.",
    routers=[router],
)
