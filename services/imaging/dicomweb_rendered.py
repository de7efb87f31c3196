"""WADO-RS rendered resources and thumbnails (PS3.18 10.4.1.1.3-5, 10.7). Thin: the work is in
service_render.py and render.py.

Query parameters: ``window=center,width[,linear|linear-exact|sigmoid]``, ``viewport=vw,vh`` (fit, aspect
kept), ``quality=1..100`` (JPEG). Accept: image/jpeg (the default) or image/png, else 406.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from common.auth import Principal, current_principal
from services.imaging import render
from services.imaging import service_render as srr
from services.imaging.dicomweb import PREFIX, archive_of

router = APIRouter(prefix=PREFIX, tags=["dicomweb"])
IMAGE_DOC: dict[str, Any] = {"responses": {"200": {"content": {"image/jpeg": {}, "image/png": {}}}}}
MULTI_DOC: dict[str, Any] = {"responses": {"200": {"content": {'multipart/related; type="image/jpeg"': {}}}}}
CACHE = {"Cache-Control": "private, max-age=3600"}


def _builder(request: Request, window: str | None, viewport: str | None, quality: str | None, *,
             thumbnail: bool = False) -> srr.OptionsBuilder:
    accept = request.headers.get("accept")
    if thumbnail:
        return srr.OptionsBuilder(lambda: render.options(
            accept, window, viewport, quality, default_viewport=srr.THUMBNAIL_VIEWPORT,
            default_quality=srr.THUMBNAIL_QUALITY))
    return srr.OptionsBuilder(lambda: render.options(accept, window, viewport, quality))


def _answer(r: srr.Rendered) -> Response:
    if not r.multipart:
        return Response(r.single(), media_type=r.media, headers=CACHE)
    boundary, media = srr.multipart_media(r)
    return StreamingResponse(srr.multipart_body(r, boundary), media_type=media, headers=CACHE)


W = Query(default=None, description="center,width[,linear|linear-exact|sigmoid]")
V = Query(default=None, description="vw,vh: fit inside, aspect kept")
Q = Query(default=None, description="JPEG quality 1..100")


@router.get("/studies/{study}/rendered", response_class=Response, openapi_extra=MULTI_DOC)
async def rendered_study(study: str, request: Request, window: str | None = W, viewport: str | None = V,
                         quality: str | None = Q, principal: Principal = Depends(current_principal)) -> Response:
    """The first frame of every image instance of the study, as a multipart/related of images."""
    return _answer(await srr.rendered(archive_of(request), principal,
                                      _builder(request, window, viewport, quality), study))


@router.get("/studies/{study}/series/{series}/rendered", response_class=Response, openapi_extra=MULTI_DOC)
async def rendered_series(study: str, series: str, request: Request, window: str | None = W,
                          viewport: str | None = V, quality: str | None = Q,
                          principal: Principal = Depends(current_principal)) -> Response:
    """The first frame of every image instance of the series, as a multipart/related of images."""
    return _answer(await srr.rendered(archive_of(request), principal,
                                      _builder(request, window, viewport, quality), study, series))


@router.get("/studies/{study}/series/{series}/instances/{sop}/rendered", response_class=Response,
            openapi_extra=IMAGE_DOC)
async def rendered_instance(study: str, series: str, sop: str, request: Request, window: str | None = W,
                            viewport: str | None = V, quality: str | None = Q,
                            principal: Principal = Depends(current_principal)) -> Response:
    """The instance's first frame as one image."""
    return _answer(await srr.rendered(archive_of(request), principal,
                                      _builder(request, window, viewport, quality), study, series, sop))


@router.get("/studies/{study}/series/{series}/instances/{sop}/frames/{frames}/rendered", response_class=Response,
            openapi_extra=IMAGE_DOC)
async def rendered_frames(study: str, series: str, sop: str, frames: str, request: Request,
                          window: str | None = W, viewport: str | None = V, quality: str | None = Q,
                          principal: Principal = Depends(current_principal)) -> Response:
    """One frame as an image; several (``/frames/1,3``) as a multipart/related of images. Frame numbers
    start at 1 (400 otherwise); a frame beyond the last is 404."""
    return _answer(await srr.rendered(archive_of(request), principal,
                                      _builder(request, window, viewport, quality), study, series, sop, frames))


@router.get("/studies/{study}/thumbnail", response_class=Response, openapi_extra=IMAGE_DOC)
async def thumbnail_study(study: str, request: Request, window: str | None = W, viewport: str | None = V,
                          quality: str | None = Q, principal: Principal = Depends(current_principal)) -> Response:
    """A small image of a representative frame of the study (128x128 box unless ``viewport``)."""
    return _answer(await srr.thumbnail(archive_of(request), principal,
                                       _builder(request, window, viewport, quality, thumbnail=True), study))


@router.get("/studies/{study}/series/{series}/thumbnail", response_class=Response, openapi_extra=IMAGE_DOC)
async def thumbnail_series(study: str, series: str, request: Request, window: str | None = W,
                           viewport: str | None = V, quality: str | None = Q,
                           principal: Principal = Depends(current_principal)) -> Response:
    """A small image of the series' middle image instance."""
    return _answer(await srr.thumbnail(archive_of(request), principal,
                                       _builder(request, window, viewport, quality, thumbnail=True), study, series))


@router.get("/studies/{study}/series/{series}/instances/{sop}/thumbnail", response_class=Response,
            openapi_extra=IMAGE_DOC)
async def thumbnail_instance(study: str, series: str, sop: str, request: Request, window: str | None = W,
                             viewport: str | None = V, quality: str | None = Q,
                             principal: Principal = Depends(current_principal)) -> Response:
    """A small image of the instance's first frame."""
    return _answer(await srr.thumbnail(archive_of(request), principal,
                                       _builder(request, window, viewport, quality, thumbnail=True),
                                       study, series, sop))
