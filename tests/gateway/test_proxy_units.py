"""Pieces of the routing layer that need no process: public prefixes, header rewriting, schema merging."""

from __future__ import annotations

from typing import Any, cast

import orjson

from common.services import ServiceSpec, is_public, owner_of
from gateway.forwarding import forward_headers, upstream_url
from gateway.openapi import merge_documents
from gateway.proxy import ProxyRuntime, ProxySettings, authorize

SHARE = ServiceSpec("imaging", "影像云", ("/api/imaging",), 8101, public_prefixes=("/api/imaging/share",))


class _Sent:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


class _State:
    token_verifier = None


class _App:
    state = _State()


def _scope(path: str, headers: list[tuple[bytes, bytes]] | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers or [],
        "client": ("10.9.8.7", 5555),
        "scheme": "http",
        "app": _App(),
        **kw,
    }


def _runtime() -> ProxyRuntime:
    return ProxyRuntime(session=cast(Any, None), settings=ProxySettings(), limiter=None)


def test_public_prefixes_match_whole_segments() -> None:
    assert is_public(SHARE, "/api/imaging/share") and is_public(SHARE, "/api/imaging/share/abc")
    assert not is_public(SHARE, "/api/imaging/shares") and not is_public(SHARE, "/api/imaging/studies")
    assert owner_of("/dicom-web/studies") is not None and owner_of("/dicom-webx") is None


async def test_public_paths_pass_without_a_token_and_others_do_not() -> None:
    sent = _Sent()
    assert await authorize(_scope("/api/imaging/share/abc"), sent, SHARE, _runtime(), "rid") == 0
    assert sent.messages == []
    assert await authorize(_scope("/api/imaging/studies"), sent, SHARE, _runtime(), "rid") == 401
    start, body = sent.messages
    assert start["status"] == 401 and (b"x-request-id", b"rid") in start["headers"]
    assert orjson.loads(body["body"])["error"] == "unauthorized"


async def test_a_token_without_a_verifier_is_503_not_500() -> None:
    sent = _Sent()
    scope = _scope("/api/imaging/studies", [(b"authorization", b"Bearer abc")])
    assert await authorize(scope, sent, SHARE, _runtime(), "rid") == 503


def test_forwarded_headers_from_a_trusted_proxy_are_kept() -> None:
    scope = _scope(
        "/api/imaging/x",
        [
            (b"host", b"th.example"),
            (b"x-forwarded-for", b"1.2.3.4"),
            (b"x-forwarded-proto", b"https"),
            (b"te", b"trailers"),
        ],
    )
    untrusted = forward_headers(scope, "r1", ())
    assert untrusted["X-Forwarded-For"] == "10.9.8.7" and untrusted["X-Forwarded-Proto"] == "http"
    assert untrusted["X-Forwarded-Host"] == "th.example" and "te" not in untrusted
    trusted = forward_headers(scope, "r1", ("10.0.0.0/8",))
    assert trusted["X-Forwarded-For"] == "1.2.3.4, 10.9.8.7" and trusted["X-Forwarded-Proto"] == "https"


def test_upstream_url_keeps_the_encoded_path_and_query() -> None:
    spec = ServiceSpec("imaging", "x", ("/wado",), 9)
    scope = _scope("/wado/a b", raw_path=b"/wado/a%20b%2F", query_string=b"requestType=WADO&contentType=image%2Fjpeg")
    url = upstream_url(spec, scope)
    assert str(url).endswith("/wado/a%20b%2F?requestType=WADO&contentType=image%2Fjpeg")
    assert str(upstream_url(spec, scope, websocket=True)).startswith("ws://")


def test_merge_tags_by_service_and_renames_clashing_components() -> None:
    base = {
        "openapi": "3.1.0",
        "info": {"title": "gw", "version": "1"},
        "paths": {"/auth/token": {"post": {"responses": {}}}},
        "components": {"schemas": {"Error": {"type": "object", "title": "gateway"}}},
    }
    ecg = {
        "paths": {
            "/api/ecg/records": {
                "get": {
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                    }
                }
            }
        },
        "components": {"schemas": {"Error": {"type": "object", "title": "ecg"}, "Record": {"type": "object"}}},
    }
    merged = merge_documents(base, {"ecg": ecg})
    op = merged["paths"]["/api/ecg/records"]["get"]
    assert op["tags"] == ["ecg"] and op["x-service"] == "ecg"
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ecg__Error"
    assert merged["components"]["schemas"]["Error"]["title"] == "gateway"
    assert merged["components"]["schemas"]["ecg__Error"]["title"] == "ecg"
    assert "Record" in merged["components"]["schemas"]
    assert base["paths"].keys() == {"/auth/token"}  # the gateway's cached document is left alone
