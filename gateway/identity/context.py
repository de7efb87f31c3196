"""Where a request came from, carried from the HTTP layer into the audit entries the services write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import Request

from common.app import client_address
from common.audit import AuditEntry
from common.auth import Principal
from common.logging import request_id_var

SOURCE = "gateway"
TRUSTED_PROXIES = ("127.0.0.0/8", "::1/128")  # as common.app.PlatformMiddleware believes X-Forwarded-For


@dataclass(frozen=True)
class RequestContext:
    client_addr: str | None = None
    request_id: str | None = None
    user_agent: str | None = None

    @classmethod
    def of(cls, request: Request) -> RequestContext:
        agent = request.headers.get("user-agent")
        return cls(
            client_addr=client_address(request.scope, TRUSTED_PROXIES),
            request_id=request_id_var.get() or None,
            user_agent=agent[:300] if agent else None,
        )

    def entry(
        self,
        principal: Principal | None,
        *,
        action: str,
        outcome: str = "success",
        status: int | None = 200,
        object_type: str | None = None,
        object_id: UUID | str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """An audit entry of the gateway for ``principal`` acting from this request."""
        return AuditEntry.for_principal(
            principal,
            source=SOURCE,
            action=action,
            outcome=outcome,
            object_type=object_type,
            object_id=str(object_id) if object_id is not None else None,
            status_code=status,
            client_addr=self.client_addr,
            request_id=self.request_id,
            detail=detail or {},
        )
