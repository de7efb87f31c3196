"""What every signed clinical document shares (ECG and imaging reports today): the sign request and the
addendum as stored. The seal itself is common.hashing.canonical_sha256 over content, signer and time."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="the draft version the reader saw and signs")


class Addendum(BaseModel):
    id: UUID
    author_id: UUID
    author_name: str
    text: str
    content_hash: str
    created_at: datetime
