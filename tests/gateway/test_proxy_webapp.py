"""The built web app at ``/``: files with cache headers, index.html for client routes, error shape elsewhere."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from common.errors import install_error_handlers
from gateway.webapp import IMMUTABLE, REVALIDATE, install_webapp


def _app(dist: Path) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter()

    @router.get("/auth/me")
    async def me() -> dict[str, str]:
        return {"who": "me"}

    @router.get("/reports")  # a gateway route that looks like a page path wins over the web app
    async def reports() -> dict[str, str]:
        return {"route": "reports"}

    app.include_router(router)
    install_webapp(app, dist)
    return app


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><div id=root>app</div>")
    (root / "assets" / "index-abc123.js").write_text("console.log('app')")
    (root / "favicon.svg").write_text("<svg/>")
    return root


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_serves_files_with_cache_headers(dist: Path) -> None:
    async with _client(_app(dist)) as c:
        index = await c.get("/")
        assert index.status_code == 200 and "id=root" in index.text
        assert index.headers["cache-control"] == REVALIDATE
        asset = await c.get("/assets/index-abc123.js")
        assert asset.status_code == 200 and asset.headers["cache-control"] == IMMUTABLE
        assert "javascript" in asset.headers["content-type"]
        again = await c.get("/assets/index-abc123.js", headers={"If-None-Match": asset.headers["etag"]})
        assert again.status_code == 304
        icon = await c.get("/favicon.svg")
        assert icon.status_code == 200 and "max-age=3600" in icon.headers["cache-control"]
        head = await c.head("/assets/index-abc123.js")
        assert head.status_code == 200 and head.content == b""


async def test_client_routes_get_index_html_only_for_page_navigations(dist: Path) -> None:
    async with _client(_app(dist)) as c:
        page = await c.get("/imaging/worklist/123", headers={"Accept": "text/html,application/xhtml+xml"})
        assert page.status_code == 200 and "id=root" in page.text
        api_like = await c.get("/imaging/worklist/123", headers={"Accept": "application/json"})
        assert api_like.status_code == 404 and api_like.json()["error"] == "not_found"
        for path in ("/api/nothing", "/auth/nothing", "/fhir/Patient", "/dicom-web/studies", "/.well-known/x"):
            r = await c.get(path, headers={"Accept": "text/html"})
            assert r.status_code == 404 and r.json()["error"] == "not_found", path
        post = await c.post("/imaging/worklist", headers={"Accept": "text/html"})
        assert post.status_code in (404, 405) and "error" in post.json()
        missing_asset = await c.get("/assets/gone.js")
        assert missing_asset.status_code == 404 and missing_asset.json()["error"] == "not_found"
        traversal = await c.get("/assets/../../../etc/passwd", headers={"Accept": "text/html"})
        assert "root:" not in traversal.text


async def test_gateway_routes_win(dist: Path) -> None:
    async with _client(_app(dist)) as c:
        assert (await c.get("/auth/me")).json() == {"who": "me"}
        assert (await c.get("/reports", headers={"Accept": "text/html"})).json() == {"route": "reports"}


async def test_without_a_build_pages_say_how_to_make_one(tmp_path: Path) -> None:
    async with _client(_app(tmp_path / "no-dist")) as c:
        page = await c.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "make web" in page.text
        deep = await c.get("/consult/rooms", headers={"Accept": "text/html"})
        assert "make web" in deep.text
        api = await c.get("/api/nothing")
        assert api.status_code == 404 and api.json()["error"] == "not_found"
