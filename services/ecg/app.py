"""The ecg service's FastAPI app: ``uvicorn services.ecg.app:app``."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from starlette.middleware import Middleware

from common.app import create_service_app
from common.config import platform_settings
from common.fonts import FontMissing, find_cjk_font
from common.services import service
from services.ecg.api import router
from services.ecg.api_alerts import router as alerts_router
from services.ecg.api_duty import router as duty_router
from services.ecg.api_grants import router as grants_router
from services.ecg.api_reading import router as reading_router
from services.ecg.limits import RECORDINGS_PREFIX, EcgBodyLimit
from services.ecg.settings import ecg_settings

SPEC = service("ecg")


async def report_font(app: FastAPI) -> dict[str, str]:
    """Readiness: signed reports need a CJK font for their Chinese text (fonts-noto-cjk)."""
    configured = ecg_settings().cjk_font
    try:
        await asyncio.to_thread(find_cjk_font, str(configured) if configured else None)
    except FontMissing as exc:
        return {"cjk_font": f"down: {exc}"}
    return {"cjk_font": "ok"}


app = create_service_app(
    SPEC.name,
    title=SPEC.title,
    description="ECG ingest in every interchange format, automatic analysis, critical values and signed reports.",
    routers=[router, reading_router, alerts_router, duty_router, grants_router],
    unlimited_body_prefixes=(RECORDINGS_PREFIX,),
    extra_readiness=[report_font],
)
# Innermost layer (appended, so inside the platform middleware that audits and counts every answer): the
# upload limit for POST /api/ecg/recordings, the platform's limit for the other routes under that prefix.
app.user_middleware.append(
    Middleware(EcgBodyLimit, upload_limit=ecg_settings().max_upload_bytes,
               other_limit=platform_settings().max_body_bytes)
)
