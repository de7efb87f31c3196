"""Settings of the imaging service, from ``IMAGING_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from common.config import ServiceSettings


class ImagingSettings(ServiceSettings):
    """Limits of the DICOMweb endpoints and the archive."""

    model_config = SettingsConfigDict(env_prefix="IMAGING_", extra="ignore", case_sensitive=False)

    # STOW-RS: the whole multipart body, and one part (one instance). A CT study is a few hundred MB; a
    # multi-frame ultrasound or a whole-slide image can be GBs.
    max_stow_bytes: int = 32 * 1024**3
    max_instance_bytes: int = 8 * 1024**3
    # Binary values longer than this become BulkDataURIs in the stored DICOM JSON metadata.
    bulk_data_threshold: int = 1024
    # QIDO-RS: default and largest page.
    qido_default_limit: int = 100
    qido_max_limit: int = 1000
    # Transcoding in a WADO-RS retrieve reads the instance into memory: refuse it (406) above this size.
    max_transcode_bytes: int = 1024**3
    # Critical-finding alerts (reading_alerts.py): escalate after this many minutes unacknowledged, at most
    # this many times.
    alert_escalation_minutes: float = 10.0
    alert_max_escalations: int = 3
    # After a STOW-RS answer, render each new image's first frame with the viewer's default options into the
    # render cache in the background (service_render.prerender): the first view is a cache hit, at about
    # 2-4 ms more CPU per stored image (bench/results/imaging.md measured it halving CT ingest on 2 cores).
    prerender_first_frame: bool = False


@lru_cache(maxsize=1)
def imaging_settings() -> ImagingSettings:
    return ImagingSettings()
