"""Settings of the video rooms, from ``CONSULT_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.config import ServiceSettings, is_development


class RoomSettings(ServiceSettings):
    """ICE, room limits and recording of the consult video rooms."""

    model_config = SettingsConfigDict(env_prefix="CONSULT_", extra="ignore", case_sensitive=False)

    # RTCIceServer dicts ({"urls": ..., "username": ..., "credential": ...}) for the server's peer connections
    # and, through GET /api/consult/ice-servers, for browsers. Empty: host candidates only (tests, one LAN).
    ice_servers: list[dict[str, Any]] = Field(default_factory=list)
    # The addresses the media server offers host candidates on. Empty: every non-loopback interface (aioice's
    # own choice). ``media_loopback`` adds 127.0.0.1 (default: on in development and test, so a browser or
    # client on the same machine can connect over loopback; Chromium needs --allow-loopback-in-peer-connection).
    media_addresses: list[str] = Field(default_factory=list)
    media_loopback: bool | None = None
    # At most this many participants in a room at once.
    room_max_participants: int = 4
    # A room nobody is in is closed (and releases everything) after this long.
    room_idle_seconds: float = 60.0
    # Encode once per source: one VP8 encoder per received video track, its packets sent by every receive slot
    # whose sender negotiated VP8 (others re-encode decoded frames, as with false). docs/consult.md, Fan-out.
    encode_once: bool = True
    # Temporary recording files (default: <TH_VAR_DIR>/consult-recordings); uploaded, then removed.
    recording_dir: Path | None = None
    # Object-store key prefix of uploaded recordings.
    recording_prefix: str = "consult/recordings"

    @property
    def loopback(self) -> bool:
        return is_development() if self.media_loopback is None else self.media_loopback


@lru_cache(maxsize=1)
def room_settings() -> RoomSettings:
    return RoomSettings()
