"""The consult service's FastAPI app: ``uvicorn services.consult.app:app``."""

from __future__ import annotations

from common.app import create_service_app
from common.services import service
from services.consult.api import router
from services.consult.api_chat import router as chat_router
from services.consult.api_opinion import router as opinion_router
from services.consult.api_rooms import router as rooms_router
from services.consult.api_rooms import start_rooms, stop_rooms
from services.consult.api_schedule import router as schedule_router

SPEC = service("consult")

app = create_service_app(
    SPEC.name,
    title=SPEC.title,
    description="Consult workflow with consent and deadlines, chat and video rooms.",
    routers=[router, opinion_router, schedule_router, chat_router, rooms_router],
    on_startup=[start_rooms],
    on_shutdown=[stop_rooms],
)
