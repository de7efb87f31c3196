"""The DIMSE listener (``python -m services.imaging.dimse``): C-ECHO, C-STORE, C-FIND, C-GET and C-MOVE.

pynetdicom runs each association in a thread of its own; the archive (asyncpg pool, object store) lives on
one asyncio loop in a background thread, and handlers hand their work to it. Only AE titles registered in
``imaging.ae_titles`` (and active) may associate; each acts for its facility alone:

- C-STORE: the received dataset, in the encoding it was sent in, is written as Part 10 (preamble + file
  meta of the association + the dataset's bytes as received) and goes through ``store_instance`` with
  ``ModalityCaller(facility, ae_title)`` and ``Origin.DIMSE``, like STOW-RS. StoreOutcome → status:
  failed → its failure reason, replaced → 0xB111, stored / duplicate → 0x0000.
- C-FIND (patient root and study root; PATIENT, STUDY, SERIES, IMAGE): answered from the index through the
  QIDO search, scoped to the AE's facility.
- C-GET: the originals, on the same association (decompressed to Explicit VR Little Endian when the peer
  accepted the SOP class only uncompressed). C-MOVE: to a registered, active AE with host and port.

Association events are logged with AE titles, addresses and counts, never patient identifiers or UIDs.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import tempfile
import threading
import weakref
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from pydantic_settings import SettingsConfigDict
from pydicom import dcmread
from pydicom._uid_dict import UID_dictionary
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, build_context, evt
from pynetdicom import sop_class as sop_classes_module
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode_file_meta
from pynetdicom.presentation import PresentationContext, QueryRetrievePresentationContexts
from pynetdicom.service_class import ServiceClass, StorageServiceClass
from pynetdicom.sop_class import Verification, register_uid, uid_to_service_class  # type: ignore[attr-defined]

from common.config import ServiceSettings, platform_settings
from common.db import Database
from common.logging import configure_logging
from common.storage import open_store
from services.imaging import dimse_query as dq
from services.imaging import dimse_registry as registry
from services.imaging.dimse_registry import RegisteredAE
from services.imaging.repository_retrieve import StoredInstance
from services.imaging.schemas import WARNING_REPLACED, ModalityCaller, Origin, StoreOutcome, StoreStatus
from services.imaging.service import Archive, store_instance

log = logging.getLogger("telehealth.imaging.dimse")
T = TypeVar("T")
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
UNCOMPRESSED_ALL = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, "1.2.840.10008.1.2.2")  # + big endian
REJECT_PERMANENT, SOURCE_USER, CALLING_AE_NOT_RECOGNISED = 0x01, 0x01, 0x03


class DimseSettings(ServiceSettings):
    """``IMAGING_DIMSE_*``: where the listener listens and what it is called."""

    model_config = SettingsConfigDict(env_prefix="IMAGING_DIMSE_", extra="ignore", case_sensitive=False)

    host: str = "127.0.0.1"
    port: int = 11112
    ae_title: str = "TH_ARCHIVE"
    # Most matches one C-FIND answers / instances one C-GET or C-MOVE sends.
    max_results: int = 10000
    # Register the demo AEs (dimse_registry.DEMO_AES) at start; never in production.
    seed_demo_aes: bool = True
    timeout_seconds: float = 300


def storage_sop_classes() -> list[str]:
    """The SOP classes the listener stores: pynetdicom's storage classes plus every other storage SOP class of
    pydicom's UID dictionary (retired ones too, such as the old Ultrasound Image Storage that older machines
    still send), without Storage Commitment and the Media Storage Directory (a file-set, not an instance)."""
    known = [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts]
    extra = []
    for uid, (name, kind, _value, _retired, keyword) in sorted(UID_dictionary.items()):
        if kind != "SOP Class" or "Storage" not in name or "Commitment" in name or uid == "1.2.840.10008.1.3.10" \
                or uid in known:
            continue
        if uid_to_service_class(uid) is ServiceClass:  # pynetdicom has no service for it: store it
            register_uid(uid, keyword if not hasattr(sop_classes_module, keyword) else f"{keyword}Archive",
                         StorageServiceClass)
        extra.append(uid)
    return known + extra


def prefer_proposed_syntaxes(supported: list[PresentationContext], requested: list[PresentationContext],
                             peer_stores: set[str]) -> list[PresentationContext]:
    """The acceptor's contexts reordered so that, per abstract syntax, the peer's preference wins.

    pynetdicom accepts the first of the *acceptor's* syntaxes that the peer proposed. With our list
    (uncompressed first) a modality offering [JPEG lossless, Explicit VR LE] in one context would be told to
    send uncompressed and would have to decompress (or fail). An archive keeps what a modality sends: for
    C-STORE its first choice is taken. ``peer_stores`` are the abstract syntaxes for which the peer proposed
    the SCP role (a C-GET requestor receiving instances): there we send, and we can always produce an
    uncompressed syntax (decompressing a compressed original), not every compressed one, so the peer's
    first uncompressed choice comes first."""
    order: dict[str, list[str]] = {}
    for cx in requested:
        order.setdefault(str(cx.abstract_syntax), [str(ts) for ts in cx.transfer_syntax])
    out = []
    for cx in supported:
        abstract = str(cx.abstract_syntax)
        wanted = order.get(abstract)
        if wanted:
            if abstract in peer_stores:
                wanted = [ts for ts in wanted if ts in UNCOMPRESSED_ALL] + wanted
            ours = [str(ts) for ts in cx.transfer_syntax]
            ranked = list(dict.fromkeys([ts for ts in wanted if ts in ours] + ours))
            new = build_context(abstract, ranked)
            new.scu_role, new.scp_role = cx.scu_role, cx.scp_role
            cx = new
        out.append(cx)
    return out


def store_status(outcome: StoreOutcome) -> int:
    """C-STORE status of a store outcome (docs/imaging.md)."""
    if outcome.status is StoreStatus.FAILED:
        return outcome.failure_reason or 0x0110
    if outcome.status is StoreStatus.REPLACED:
        return outcome.warning_reason or WARNING_REPLACED
    return 0x0000


def write_part10(event: evt.Event, path: Path) -> int:
    """The received dataset as a Part-10 file: preamble, DICM, the file meta of the association (its
    accepted transfer syntax, SOP class and instance), then the dataset's bytes exactly as received (never
    decoded and re-encoded). The same bytes as ``event.encoded_dataset()``, without copying them."""
    request = event.request
    stream = request.DataSet if isinstance(request, C_STORE) else None
    if not isinstance(stream, io.BytesIO):
        raise TypeError("the C-STORE request has no dataset")
    meta = encode_file_meta(event.file_meta)
    with path.open("wb") as fh:
        fh.write(b"\x00" * 128 + b"DICM" + meta)
        fh.write(stream.getbuffer())
    return 132 + len(meta) + stream.getbuffer().nbytes


class Listener:
    """The archive on a background event loop, and pynetdicom's handlers."""

    def __init__(self, settings: DimseSettings):
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dimse-archive", daemon=True)
        self.peers: weakref.WeakKeyDictionary[Association, RegisteredAE] = weakref.WeakKeyDictionary()
        self.archive: Archive | None = None

    # -- the archive's loop ------------------------------------------------------------------------------
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=self.settings.timeout_seconds)

    def open(self) -> None:
        self.thread.start()
        ps = platform_settings()
        db = self.run(Database.connect(ps.application_dsn(), min_size=1, max_size=4))
        self.archive = Archive.of(db, open_store(ps))
        if self.settings.seed_demo_aes and ps.th_env != "production":
            added = self.run(registry.ensure_demo_aes(db))
            if added:
                log.info("demo AE titles registered", extra={"ae_titles": added})

    def close(self) -> None:
        if self.archive is not None:
            self.run(self.archive.db.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    def _archive(self) -> Archive:
        assert self.archive is not None
        return self.archive

    def _peer(self, assoc: Association) -> RegisteredAE:
        return self.peers[assoc]

    # -- the AE ------------------------------------------------------------------------------------------
    def application_entity(self) -> AE:
        ae = AE(ae_title=self.settings.ae_title)
        ae.maximum_associations = 20
        ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
        for sop_class in storage_sop_classes():
            # scu/scp roles: a C-GET requestor proposes to be the storage SCP on its own association.
            ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES, scu_role=True, scp_role=True)
        for cx in QueryRetrievePresentationContexts:
            ae.add_supported_context(str(cx.abstract_syntax), [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        return ae

    def handlers(self) -> list[Any]:
        return [(evt.EVT_REQUESTED, self.on_requested), (evt.EVT_ESTABLISHED, self.on_established),
                (evt.EVT_RELEASED, self.on_ended), (evt.EVT_ABORTED, self.on_ended),
                (evt.EVT_C_ECHO, self.on_echo), (evt.EVT_C_STORE, self.on_store), (evt.EVT_C_FIND, self.on_find),
                (evt.EVT_C_GET, self.on_get), (evt.EVT_C_MOVE, self.on_move)]

    # -- association -------------------------------------------------------------------------------------
    def on_requested(self, event: evt.Event) -> None:
        assoc = event.assoc
        request = assoc.requestor.primitive
        calling = str(request.calling_ae_title if request is not None else "").strip()
        peer_addr = f"{assoc.requestor.address}:{assoc.requestor.port}"
        try:
            peer = self.run(registry.lookup(self._archive().db, calling))
        except Exception:
            log.exception("AE registry lookup failed", extra={"calling_ae": calling, "peer": peer_addr})
            assoc.acse.send_reject(0x02, 0x03, 0x01)  # transient, service provider (presentation): congestion
            assoc.kill()  # waits until the A-ASSOCIATE-RJ is out, as pynetdicom's own rejections do
            return
        if peer is None:
            log.warning("association rejected: calling AE title not registered",
                        extra={"calling_ae": calling, "peer": peer_addr})
            assoc.acse.send_reject(REJECT_PERMANENT, SOURCE_USER, CALLING_AE_NOT_RECOGNISED)
            assoc.kill()
            return
        self.peers[assoc] = peer
        peer_stores = {str(uid) for uid, item in assoc.requestor.role_selection.items() if item.scp_role}
        assoc.acceptor.supported_contexts = prefer_proposed_syntaxes(
            assoc.acceptor.supported_contexts, assoc.requestor.requested_contexts, peer_stores)

    def on_established(self, event: evt.Event) -> None:
        peer = self.peers.get(event.assoc)
        log.info("association established", extra={
            "calling_ae": peer.ae_title if peer else "", "facility_id": str(peer.facility_id) if peer else "",
            "peer": f"{event.assoc.requestor.address}:{event.assoc.requestor.port}",
            "contexts": len(event.assoc.accepted_contexts)})

    def on_ended(self, event: evt.Event) -> None:
        peer = self.peers.get(event.assoc)
        if peer is not None:
            log.info("association " + ("released" if event.event is evt.EVT_RELEASED else "aborted"),
                     extra={"calling_ae": peer.ae_title})

    def on_echo(self, event: evt.Event) -> int:
        return 0x0000

    # -- C-STORE -----------------------------------------------------------------------------------------
    def on_store(self, event: evt.Event) -> int:
        peer = self._peer(event.assoc)
        caller = ModalityCaller(peer.facility_id, peer.ae_title)
        with tempfile.TemporaryDirectory(prefix="dimse-store-") as work:
            path = Path(work) / "instance.dcm"
            try:
                size = write_part10(event, path)
                outcome = self.run(store_instance(self._archive(), path, caller, Origin.DIMSE))
            except Exception:
                log.exception("C-STORE failed", extra={"calling_ae": peer.ae_title})
                return 0x0110
        status = store_status(outcome)
        log.info("C-STORE", extra={"calling_ae": peer.ae_title, "status": f"0x{status:04X}",
                                   "outcome": outcome.status.value, "sop_class": outcome.sop_class_uid,
                                   "bytes": size})
        return status

    # -- C-FIND ------------------------------------------------------------------------------------------
    def on_find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        peer = self._peer(event.assoc)
        caller = ModalityCaller(peer.facility_id, peer.ae_title)
        try:
            identifier = event.identifier
            answers = self.run(dq.find(self._archive(), caller.principal(), identifier,
                                       ae_title=self.settings.ae_title, cap=self.settings.max_results))
        except dq.BadIdentifier as exc:
            log.info("C-FIND refused", extra={"calling_ae": peer.ae_title, "reason": str(exc)[:120]})
            yield dq.STATUS_IDENTIFIER_INVALID, None
            return
        except Exception:
            log.exception("C-FIND failed", extra={"calling_ae": peer.ae_title})
            yield dq.STATUS_UNABLE, None
            return
        log.info("C-FIND", extra={"calling_ae": peer.ae_title, "qr_level": str(identifier.QueryRetrieveLevel),
                                  "matches": len(answers)})
        for answer in answers:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield dq.STATUS_PENDING, answer

    # -- C-GET / C-MOVE ----------------------------------------------------------------------------------
    def _to_send(self, event: evt.Event, peer: RegisteredAE) -> list[StoredInstance]:
        caller = ModalityCaller(peer.facility_id, peer.ae_title)
        return self.run(dq.instances_to_retrieve(self._archive(), caller.principal(), event.identifier,
                                                 self.settings.max_results))

    def _dataset(self, inst: StoredInstance, accepted: set[tuple[str, str]] | None) -> Dataset:
        data = self.run(self._archive().store.read(inst.object_key))
        ds = dcmread(io.BytesIO(data))
        if (accepted is not None and (inst.sop_class_uid, inst.transfer_syntax_uid) not in accepted
                and any((inst.sop_class_uid, ts) in accepted for ts in UNCOMPRESSED_ALL)
                and ds.file_meta.TransferSyntaxUID.is_compressed):
            ds.decompress(generate_instance_uid=False)  # the peer took this SOP class uncompressed only
        return ds

    def on_get(self, event: evt.Event) -> Iterator[Any]:
        peer = self._peer(event.assoc)
        try:
            found = self._to_send(event, peer)
        except dq.BadIdentifier as exc:
            log.info("C-GET refused", extra={"calling_ae": peer.ae_title, "reason": str(exc)[:120]})
            # pynetdicom takes the number of sub-operations first; a failure status may follow it
            yield 1
            yield dq.STATUS_IDENTIFIER_INVALID, None
            return
        except Exception:
            log.exception("C-GET failed", extra={"calling_ae": peer.ae_title})
            yield 1
            yield 0xA701, None  # out of resources: unable to calculate number of matches
            return
        accepted = {(str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in event.assoc.accepted_contexts
                    if cx.as_scu and cx.transfer_syntax}
        log.info("C-GET", extra={"calling_ae": peer.ae_title, "instances": len(found)})
        yield len(found)
        yield from self._send_all(event, found, accepted)

    def on_move(self, event: evt.Event) -> Iterator[Any]:
        peer = self._peer(event.assoc)
        destination = str(event.move_destination or "").strip()
        target = self.run(registry.lookup(self._archive().db, destination))
        if target is None or target.host is None or target.port is None:
            log.info("C-MOVE refused: destination not registered", extra={"calling_ae": peer.ae_title,
                                                                          "move_destination": destination})
            yield None, None  # pynetdicom answers 0xA801 (move destination unknown)
            return
        # pynetdicom takes the destination, then the number of sub-operations (it associates with the
        # destination when that is not 0); a failure status may follow them.
        failure = None
        try:
            found = self._to_send(event, peer)
        except dq.BadIdentifier as exc:
            log.info("C-MOVE refused", extra={"calling_ae": peer.ae_title, "reason": str(exc)[:120]})
            failure = dq.STATUS_IDENTIFIER_INVALID
        except Exception:
            log.exception("C-MOVE failed", extra={"calling_ae": peer.ae_title})
            failure = 0xA701
        if failure is not None:
            yield target.host, target.port, {"contexts": [build_context(Verification)], "ae_title": target.ae_title}
            yield 1
            yield failure, None
            return
        # The stored syntax in a context of its own (an acceptor may pick any syntax it supports from a list),
        # plus the uncompressed ones: the originals are sent as stored, so a destination that refuses a
        # compressed syntax fails that sub-operation.
        contexts = []
        for sop_class, ts in dq.sop_classes(found)[:64]:
            contexts.append(build_context(sop_class, [ts]))
            if ts not in UNCOMPRESSED:
                contexts.append(build_context(sop_class, list(UNCOMPRESSED)))
        log.info("C-MOVE", extra={"calling_ae": peer.ae_title, "move_destination": destination,
                                  "instances": len(found)})
        yield target.host, target.port, {"contexts": contexts or None, "ae_title": target.ae_title}
        yield len(found)
        yield from self._send_all(event, found, None)

    def _send_all(self, event: evt.Event, found: list[StoredInstance],
                  accepted: set[tuple[str, str]] | None) -> Iterator[tuple[int, Dataset | None]]:
        for inst in found:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            try:
                ds = self._dataset(inst, accepted)
            except Exception:
                log.exception("reading an instance for a retrieve failed")
                yield 0xA702, None  # out of resources: unable to perform sub-operations
                return
            yield dq.STATUS_PENDING, ds


def main() -> None:
    settings = DimseSettings()
    configure_logging("imaging-dimse", platform_settings().log_level)
    # pynetdicom logs whole identifiers (patient names and ids) at INFO: keep its warnings and errors only.
    logging.getLogger("pynetdicom").setLevel(max(logging.WARNING, logging.getLogger().level))
    listener = Listener(settings)
    listener.open()
    ae = listener.application_entity()
    port = settings.port
    try:
        server = ae.start_server((settings.host, port), block=False, evt_handlers=listener.handlers())
    except OSError:
        if "IMAGING_DIMSE_PORT" in os.environ:
            raise
        # `make run` next to another DICOM node: take a free port rather than stop the whole Procfile
        server = ae.start_server((settings.host, 0), block=False, evt_handlers=listener.handlers())
        log.warning("the default DIMSE port is busy; listening on another", extra={"busy_port": port})
    if server is not None:
        port = int(server.server_address[1])
    log.info("DIMSE listener ready", extra={"ae_title": settings.ae_title, "host": settings.host, "port": port})
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"DIMSE {settings.ae_title} listening on {settings.host}:{port}", flush=True)
    stop.wait()
    if server is not None:
        server.shutdown()
    listener.close()


if __name__ == "__main__":
    main()
