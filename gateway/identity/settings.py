"""Settings of the gateway's identity service (prefix ``IDENTITY_``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.config import ServiceSettings


class IdentitySettings(ServiceSettings):
    """Token lifetimes, lockout policy and the second factor."""

    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore", case_sensitive=False)

    access_token_seconds: int = Field(default=15 * 60, ge=60, le=3600)
    refresh_token_seconds: int = Field(default=7 * 24 * 3600, ge=300)
    max_failed_attempts: int = Field(default=5, ge=1)
    lockout_seconds: int = Field(default=15 * 60, ge=1)
    totp_issuer: str = "清河远程医疗云"
    # base64url of 32 bytes; when empty the key lives in ``<keys_dir>/totp.key`` (made on first use).
    totp_key: str = ""


@lru_cache(maxsize=1)
def identity_settings() -> IdentitySettings:
    return IdentitySettings()
