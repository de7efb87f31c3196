"""HTTP layer of the ecg service: thin, no logic."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from common.auth import Principal, current_principal

router = APIRouter(prefix="/api/ecg", tags=["ecg"])


@router.get("/capabilities")
async def capabilities(principal: Principal = Depends(current_principal)) -> dict[str, object]:
    """What this service offers today (the clinical endpoints arrive with the service's own work)."""
    return {"service": "ecg", "status": "foundation", "features": []}
