"""The built browser app (web/dist) at ``/``.

Served by a pure-ASGI layer in front of the app that steps in only when no route of the gateway matches
(so it never shadows one, and static files leave no audit rows): a GET or HEAD is looked up in web/dist
(hashed assets under ``/assets/`` are cached for a year, other files for an hour, ``index.html``
revalidated each time); a page navigation (``Accept: text/html``) to any other path that is
not an API or protocol path gets ``index.html`` for the client-side router. Everything else keeps the
platform's 404 error shape. Without a build, pages say how to make one (``make web``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Match
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from common.app import INFRA_PATHS
from common.config import REPO_ROOT, ServiceSettings
from common.services import owner_of

# Paths that belong to programs, not to the browser app: they never get index.html.
NON_PAGE_PREFIXES = ("/api/", "/auth/", "/.well-known/", "/ws/", "/internal/", "/_")

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=3600"
REVALIDATE = "no-cache"

NOT_BUILT = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>区域远程医疗云 Regional Tele-Health Cloud</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>区域远程医疗云 · Regional Tele-Health Cloud</h1>
<p>网页应用尚未构建。请在项目目录运行 <code>make web</code>，然后刷新本页。</p>
<p>The web app has not been built yet. Run <code>make web</code> in the project directory, then reload.</p>
<p>API: <a href="/docs">/docs</a></p>
</body></html>
"""


class WebSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", case_sensitive=False)

    web_dist: Path = REPO_ROOT / "web" / "dist"


def is_page_path(path: str) -> bool:
    """Whether ``path`` may be a client-side route of the browser app."""
    if path in INFRA_PATHS or path.startswith(NON_PAGE_PREFIXES) or owner_of(path) is not None:
        return False
    return path not in ("/auth", "/api")


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


class WebApp:
    """Finds and answers files of web/dist, with the cache headers each kind deserves."""

    def __init__(self, dist: Path):
        self.dist = dist
        self._static: StaticFiles | None = None

    @property
    def built(self) -> bool:
        return (self.dist / "index.html").is_file()

    def static(self) -> StaticFiles:
        if self._static is None:
            self._static = StaticFiles(directory=self.dist, check_dir=False)
        return self._static

    async def file(self, request: Request, relative: str) -> Response | None:
        try:
            response = await self.static().get_response(relative, request.scope)
        except StarletteHTTPException:
            return None
        if response.status_code >= 400:
            return None
        if relative == "index.html":
            response.headers["cache-control"] = REVALIDATE
        elif relative.startswith("assets/"):
            response.headers["cache-control"] = IMMUTABLE
        else:
            response.headers["cache-control"] = SHORT
        return response

    async def answer(self, request: Request) -> Response | None:
        """The response for an unrouted GET/HEAD, or None when it should stay a 404."""
        if request.method not in ("GET", "HEAD"):
            return None
        path = request.url.path
        page = is_page_path(path) and (_wants_html(request) or path == "/")
        if not self.built:
            return HTMLResponse(NOT_BUILT, headers={"cache-control": REVALIDATE}) if page else None
        relative = path.lstrip("/")
        if relative and not relative.endswith("/") and is_page_path(path):
            found = await self.file(request, relative)
            if found is not None:
                return found
        if page:
            return await self.file(request, "index.html")
        return None


class WebAppEdge:
    """Answers GET/HEAD requests for page paths that no gateway route matches; passes the rest on."""

    def __init__(self, app: ASGIApp, *, web: WebApp, gateway: FastAPI):
        self.app = app
        self.web = web
        self.gateway = gateway

    def _routed(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] != Match.NONE for route in self.gateway.router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and is_page_path(scope["path"])
            and not self._routed(scope)
        ):
            response = await self.web.answer(Request(scope, receive))
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_webapp(app: FastAPI, dist: Path | None = None) -> None:
    """Serve web/dist at ``/`` in front of the app; unknown non-page paths keep the 404 error shape."""
    web = WebApp(dist or WebSettings().web_dist)
    app.state.webapp = web
    app.add_middleware(WebAppEdge, web=web, gateway=app)
