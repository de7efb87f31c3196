"""The platform's services in one table: name, path prefixes they own, and default local port.

The gateway routes by these prefixes; a service serves the very same paths, so calling it directly and
calling it through the gateway differ only in host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    title: str
    prefixes: tuple[str, ...]
    default_port: int
    # Paths under these prefixes pass the gateway without a bearer token (the service still decides
    # who may see what), e.g. a share-link viewer. Keep the list short: everything else needs a token.
    public_prefixes: tuple[str, ...] = ()

    @property
    def url_env(self) -> str:
        return f"{self.name.upper()}_URL"

    @property
    def url(self) -> str:
        return os.environ.get(self.url_env, f"http://127.0.0.1:{self.default_port}")

    @property
    def app_path(self) -> str:
        return f"services.{self.name}.app:app"


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("imaging", "影像云 Imaging cloud", ("/api/imaging", "/dicom-web", "/wado"), 8101,
                public_prefixes=("/api/imaging/shared",)),
    ServiceSpec("ecg", "心电云 ECG cloud", ("/api/ecg",), 8102),
    ServiceSpec("pathology", "病理云 Pathology cloud", ("/api/pathology", "/iiif"), 8103),
    ServiceSpec("consult", "远程会诊云 Remote consultation cloud", ("/api/consult",), 8104),
    ServiceSpec("health_mgmt", "健康管理云 Health management cloud", ("/api/health", "/fhir"), 8105),
)

GATEWAY_DEFAULT_PORT = 8000


def service(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(name)


def owner_of(path: str) -> ServiceSpec | None:
    """The service that owns ``path``, by longest matching prefix."""
    best: tuple[int, ServiceSpec] | None = None
    for spec in SERVICES:
        for prefix in spec.prefixes:
            if (path == prefix or path.startswith(prefix + "/")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), spec)
    return best[1] if best else None


def is_public(spec: ServiceSpec, path: str) -> bool:
    """Whether ``spec`` declares ``path`` open to callers without a token."""
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in spec.public_prefixes)
