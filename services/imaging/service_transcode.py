"""Transfer syntaxes: which ones a retrieve can produce from an archived instance, and the transcoding itself.

Decoding uses pydicom's pixel-data plugins (pylibjpeg with -libjpeg, -openjpeg and -rle: JPEG baseline,
extended and lossless, JPEG-LS, JPEG 2000, RLE; deflate and big endian natively). Encoding is possible to
the uncompressed little-endian syntaxes (explicit, implicit, deflated), RLE Lossless and JPEG 2000
(lossless or not). A lossy target (JPEG baseline, JPEG-LS near-lossless...) is never produced: 406.
Decoding a YBR colour image yields RGB (PhotometricInterpretation follows). Synchronous: run in a thread.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.encoders.base import get_encoder
from pydicom.pixels.utils import pack_bits, pixel_array
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

log = logging.getLogger("telehealth.imaging.transcode")

UNCOMPRESSED_TARGETS = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian})
COMPRESSED_TARGETS = frozenset({RLELossless, JPEG2000Lossless, JPEG2000})
NATIVE_SOURCES = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                            "1.2.840.10008.1.2.2"})

# Media type of a frame (PS3.18 Table 8.7.3-5) in each compressed transfer syntax.
FRAME_MEDIA = {
    "1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx", "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc", "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc", "1.2.840.10008.1.2.5": "image/dicom-rle",
}


class TranscodeError(Exception):
    """The instance could not be transcoded (a decoder failed on its data)."""


@lru_cache(maxsize=64)
def can_decode(ts: str) -> bool:
    if ts in NATIVE_SOURCES:
        return True
    try:
        return bool(get_decoder(UID(ts)).is_available)
    except (NotImplementedError, ValueError):
        return False


@lru_cache(maxsize=64)
def can_encode(ts: str) -> bool:
    if ts in UNCOMPRESSED_TARGETS:
        return True
    if ts not in COMPRESSED_TARGETS:
        return False
    try:
        return bool(get_encoder(UID(ts)).is_available)
    except (NotImplementedError, ValueError):
        return False


def can_transcode(source: str, target: str, *, has_pixels: bool) -> bool:
    """Whether an instance stored in ``source`` can be sent in ``target``."""
    if source == target:
        return True
    if not has_pixels:
        return target in UNCOMPRESSED_TARGETS and (source in NATIVE_SOURCES)
    return can_decode(source) and can_encode(target)


def _little_endian_copy(ds: Dataset) -> Dataset:
    """A big-endian dataset re-built little endian (pydicom will not switch endianness on save)."""
    arr = ds.pixel_array if "PixelData" in ds else None
    new = Dataset()
    for elem in ds:
        new.add(elem)
    new.file_meta = FileMetaDataset(ds.file_meta)
    if arr is not None:
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        new.PixelData = data + (b"\x00" if len(data) % 2 else b"")
        new["PixelData"].VR = "OW" if int(ds.BitsAllocated) > 8 else "OB"
        if int(ds.get("SamplesPerPixel", 1)) > 1:
            new.PlanarConfiguration = 0
    new.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return new


def transcode(source: Path, target_path: Path, target: str) -> None:
    """Write the instance at ``source`` to ``target_path`` in transfer syntax ``target``."""
    try:
        ds: Dataset = pydicom.dcmread(source)
        src = UID(str(ds.file_meta.TransferSyntaxUID))
        has_pixels = "PixelData" in ds
        if not src.is_little_endian:
            ds = _little_endian_copy(ds)
        elif has_pixels and src.is_compressed:
            ds.decompress(generate_instance_uid=False)
        if target in COMPRESSED_TARGETS and has_pixels:
            ds.compress(UID(target), generate_instance_uid=False)
        else:
            ds.file_meta.TransferSyntaxUID = UID(target if target in UNCOMPRESSED_TARGETS else ExplicitVRLittleEndian)
        ds.save_as(target_path, enforce_file_format=True)
    except Exception as exc:  # decoders raise many kinds on data they cannot handle
        raise TranscodeError(f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def decoded_frame(source: Path, index: int) -> bytes:
    """Frame ``index`` (0-based) decoded to little-endian native bytes (colour interleaved, YBR as RGB)."""
    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True)
        if str(ds.file_meta.get("TransferSyntaxUID", "")) == DeflatedExplicitVRLittleEndian:
            # pydicom's frame reader works on the raw file; a deflated dataset must be inflated first
            whole = pydicom.dcmread(source)
            frames = whole.pixel_array
            arr = frames[index] if int(whole.get("NumberOfFrames", 1) or 1) > 1 else frames
        else:
            arr = pixel_array(source, index=index)
        if int(ds.get("BitsAllocated", 8)) == 1:
            return bytes(pack_bits(arr))
        return np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"))).tobytes()
    except Exception as exc:
        raise TranscodeError(f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def encapsulated_frame(source: Path, index: int, number_of_frames: int) -> bytes:
    """Frame ``index`` (0-based) of encapsulated pixel data, as stored (no decoding)."""
    from pydicom.encaps import get_frame

    ds = pydicom.dcmread(source)
    return bytes(get_frame(ds.PixelData, index, number_of_frames=number_of_frames))
