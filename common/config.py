"""Platform settings shared by the gateway, every service and the workers.

Shared infrastructure settings carry no prefix (``DATABASE_URL``, ``REDIS_URL``, ``S3_*``); each service
keeps its own settings in a subclass of :class:`ServiceSettings` with a prefix of its own (``ECG_``...).
Secrets have development defaults that refuse to start outside development and test.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_DB_ROLE = "th_app"

# Development defaults for secrets: usable on a laptop, refused in production.
DEV_INTERNAL_API_KEY = "dev-internal-key-change-me"
DEV_PRESIGN_SECRET = "dev-presign-secret-change-me"  # noqa: S105


class PlatformSettings(BaseSettings):
    """Infrastructure every process needs."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    th_env: Literal["development", "test", "production"] = "development"
    th_var_dir: Path = REPO_ROOT / "var"

    # Owner/admin connection: migrations run with it. The application connects as APP_DB_ROLE.
    database_url: str = ""
    app_database_url: str = ""
    app_db_password: str = ""
    db_pool_min: int = 1
    db_pool_max: int = 10

    redis_url: str = ""

    object_store: Literal["file", "s3"] = "file"
    object_store_root: Path | None = None
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_bucket: str = "telehealth"
    presign_secret: str = DEV_PRESIGN_SECRET

    jwt_issuer: str = "telehealth-gateway"
    jwt_audience: str = "telehealth"
    jwt_public_key_file: Path | None = None
    internal_api_key: str = DEV_INTERNAL_API_KEY
    gateway_url: str = "http://127.0.0.1:8000"

    log_level: str = "INFO"
    # Peers whose X-Forwarded-For a service believes (the gateway's addresses); comma-separated in the env.
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    max_body_bytes: int = Field(default=8 * 1024 * 1024, description="JSON/form body limit; uploads set their own")

    @model_validator(mode="after")
    def _refuse_dev_secrets(self) -> PlatformSettings:
        if self.th_env == "production":
            weak = [
                name
                for name, value, default in (
                    ("INTERNAL_API_KEY", self.internal_api_key, DEV_INTERNAL_API_KEY),
                    ("PRESIGN_SECRET", self.presign_secret, DEV_PRESIGN_SECRET),
                )
                if value == default
            ]
            if weak:
                raise ValueError(f"refusing to start in production with development secrets: {', '.join(weak)}")
        return self

    @property
    def keys_dir(self) -> Path:
        return self.th_var_dir / "keys"

    @property
    def public_key_path(self) -> Path:
        return self.jwt_public_key_file or self.keys_dir / "jwt_public.pem"

    @property
    def objects_root(self) -> Path:
        return self.object_store_root or self.th_var_dir / "objects"

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set: run `make run`, or point DATABASE_URL at PostgreSQL")
        return self.database_url

    def application_dsn(self) -> str:
        """The DSN the application role connects with (row-level security applies to it)."""
        if self.app_database_url:
            return self.app_database_url
        parts = urlsplit(self.require_database_url())
        host = parts.hostname or ""
        netloc = APP_DB_ROLE
        if self.app_db_password:
            netloc += f":{self.app_db_password}"
        netloc += f"@{host}" if ":" not in host else f"@[{host}]"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("REDIS_URL is not set: run `make run`, or point REDIS_URL at Redis")
        return self.redis_url


class ServiceSettings(BaseSettings):
    """Base for a service's own settings; subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)


@lru_cache(maxsize=1)
def platform_settings() -> PlatformSettings:
    return PlatformSettings()


def reset_settings_cache() -> None:
    """Forget cached settings (tests change the environment between runs)."""
    platform_settings.cache_clear()


def is_development() -> bool:
    return os.environ.get("TH_ENV", "development") in {"development", "test"}
