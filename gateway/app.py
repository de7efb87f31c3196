"""The gateway: the only public entry. ``uvicorn gateway.app:app``.

Its own routes (identity, admin, audit, analytics, JWKS, health) come first; everything under a
service's prefix is forwarded to that service (gateway/proxy.py); the built web app is served at ``/``.
"""

from __future__ import annotations

from common.app import create_service_app
from gateway.analytics.api import router as analytics_router
from gateway.audit.api import router as audit_router
from gateway.identity.admin_api import router as admin_router
from gateway.identity.api import router as identity_router
from gateway.identity.directory_api import router as directory_router
from gateway.lifecycle import on_shutdown, on_startup
from gateway.openapi import install_openapi
from gateway.proxy import install_proxy
from gateway.upstreams import services_readiness
from gateway.webapp import install_webapp

app = create_service_app(
    "gateway",
    title="Regional Tele-Health Cloud gateway 区域远程医疗云网关",
    description="Identity, tenancy, audit, routing and analytics for the five clinical clouds.",
    routers=[identity_router, directory_router, admin_router, audit_router, analytics_router],
    on_startup=[on_startup],
    on_shutdown=[on_shutdown],
    extra_readiness=[services_readiness],
)
install_proxy(app)
install_openapi(app)
install_webapp(app)
