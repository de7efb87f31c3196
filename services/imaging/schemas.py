"""Types the imaging service's functions take and return (the adapters: DICOMweb, DIMSE, the web uploader)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from common.auth import SYSTEM_USER, Principal, Role


class Origin(StrEnum):
    """Where an instance came from (kept on its row)."""

    STOW = "stow"
    DIMSE = "dimse"
    WEB = "web"


@dataclass(frozen=True)
class ModalityCaller:
    """A DICOM network peer (C-STORE SCU) whose calling AE title is registered to a facility."""

    facility_id: UUID
    ae_title: str

    def principal(self) -> Principal:
        """The facility-scoped principal the archive acts as for this AE (sees its own facility only)."""
        return Principal(user_id=SYSTEM_USER, username=f"ae:{self.ae_title}", roles=frozenset({Role.TECHNICIAN}),
                         facility_id=self.facility_id)


Caller = Principal | ModalityCaller


class StoreStatus(StrEnum):
    STORED = "stored"          # new instance archived
    DUPLICATE = "duplicate"    # same SOP Instance UID, same bytes: nothing changed (success)
    REPLACED = "replaced"      # same SOP Instance UID, other bytes, same study and series: replaced (warning)
    FAILED = "failed"


# PS3.18 Annex I / PS3.4 Annex B and PS3.7 codes used in Store Instances responses and C-STORE statuses.
FAILURE_PROCESSING = 0x0110
FAILURE_DUPLICATE_SOP = 0x0111
FAILURE_NOT_AUTHORIZED = 0x0124
FAILURE_OUT_OF_RESOURCES = 0xA700
FAILURE_DOES_NOT_MATCH = 0xA900
FAILURE_CANNOT_UNDERSTAND = 0xC000
# Implementation-specific warning (conformance statement, docs/imaging.md): an earlier copy of this SOP
# Instance with other bytes was replaced by this one.
WARNING_REPLACED = 0xB111


@dataclass(frozen=True)
class StoreOutcome:
    """What ``store_instance`` did with one instance; adapters turn it into their protocol's answer."""

    status: StoreStatus
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_uid: str = ""
    series_uid: str = ""
    failure_reason: int | None = None
    warning_reason: int | None = None
    detail: str = ""
    instance_id: UUID | None = None
    study_id: UUID | None = None
    new_study: bool = False
    facility_id: UUID | None = None  # the study's owner facility

    @property
    def ok(self) -> bool:
        return self.status is not StoreStatus.FAILED


def failed(reason: int, detail: str, *, sop_class_uid: str = "", sop_instance_uid: str = "",
           study_uid: str = "", series_uid: str = "") -> StoreOutcome:
    return StoreOutcome(StoreStatus.FAILED, sop_class_uid, sop_instance_uid, study_uid, series_uid,
                        failure_reason=reason, detail=detail)
