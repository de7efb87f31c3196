"""The imaging service's FastAPI app: ``uvicorn services.imaging.app:app``."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.app import create_service_app
from common.services import service
from services.imaging.api import router, wado_uri_router
from services.imaging.api_ae import router as ae_router
from services.imaging.api_reading import router as reading_router
from services.imaging.api_sharing import router as sharing_router
from services.imaging.dicomweb import PREFIX
from services.imaging.dicomweb_qido import router as qido_router
from services.imaging.dicomweb_rendered import router as rendered_router
from services.imaging.dicomweb_stow import router as stow_router
from services.imaging.dicomweb_wado import router as wado_router
from services.imaging.tiering import install_tiered_store

SHARED_PATH = "/api/imaging/shared"

SPEC = service("imaging")

app = create_service_app(
    SPEC.name,
    title=SPEC.title,
    description="DICOMweb and DIMSE archive, viewer, reading worklist and signed reports.",
    routers=[router, stow_router, qido_router, wado_router, rendered_router, wado_uri_router, ae_router,
             sharing_router, reading_router],
    # STOW-RS bodies are whole studies: the platform's body limit is lifted under /dicom-web and
    # IMAGING_MAX_STOW_BYTES / IMAGING_MAX_INSTANCE_BYTES apply while the body streams (dicomweb_stow.py).
    unlimited_body_prefixes=(PREFIX,),
    # Reads follow each instance row's tier (hot store, or the cold store for cold/ keys): tiering.py.
    on_startup=[install_tiered_store],
)


class ShareAnswersUncached:
    """A share link's answers depend on the token in a header, not only on the URL: no cache may keep one and
    hand it to another token's holder (a revoked link's 410 served to a fresh link, or the reverse)."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(SHARED_PATH):
            await self.inner(scope, receive, send)
            return

        async def send_uncached(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers += [(b"cache-control", b"no-store"), (b"vary", b"X-Share-Token")]
                message = {**message, "headers": headers}
            await send(message)

        await self.inner(scope, receive, send_uncached)


app.add_middleware(ShareAnswersUncached)
