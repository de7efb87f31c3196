"""Rendering one frame of a DICOM image to JPEG or PNG (PS3.18 8.3.5 rendered media, 10.4 rendered resources).

The grayscale pipeline follows PS3.3 C.11: stored values → Modality LUT (Rescale Slope/Intercept or a
Modality LUT Sequence) → VOI (the caller's ``window``; else the data set's VOI LUT Sequence or first
Window Center/Width, from the top level or the frame's functional groups; else the frame's min/max) →
8 bits, inverted for MONOCHROME1. Palette colour goes through its LUTs, YBR is converted to RGB by the
decoder, other colour images are scaled to 8 bits. ``viewport`` scales the image to fit inside vw x vh
keeping its aspect. Decoding uses pydicom's pixel handlers with the pylibjpeg plugins (JPEG baseline,
extended, lossless, JPEG-LS, JPEG 2000, RLE; deflate and big endian natively) and decodes only the frame
asked for. Synchronous and CPU-bound: callers run it in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.pixels.utils import pixel_array

from common.errors import BadRequest
from services.imaging.dicomweb_multipart import parse_accept

log = logging.getLogger("telehealth.imaging.render")
JPEG, PNG = "image/jpeg", "image/png"
MEDIA = (JPEG, PNG)
FUNCTIONS = ("linear", "linear-exact", "sigmoid")
DEFAULT_QUALITY = 90
MAX_VIEWPORT = 8192


class RenderError(Exception):
    """The image cannot be rendered (no pixel data, a decoder failed, an unsupported layout)."""


class UnsupportedMedia(Exception):
    """None of the accepted media types can be produced."""


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = "linear"


@dataclass(frozen=True)
class RenderOptions:
    media: str = JPEG
    window: Window | None = None
    viewport: tuple[int | None, int | None] | None = None
    quality: int = DEFAULT_QUALITY

    def cache_tag(self) -> str:
        """A short stable digest of the options (for cache keys)."""
        text = repr((self.media, self.window, self.viewport, self.quality if self.media == JPEG else None))
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @property
    def extension(self) -> str:
        return "jpg" if self.media == JPEG else "png"


# --- parameters -----------------------------------------------------------------------------------------


def choose_media(accept: str | None) -> str:
    """The rendered media type for an Accept header: image/jpeg (the default) or image/png."""
    entries = parse_accept(accept)
    if not entries:
        return JPEG
    for e in entries:
        kind = e.params.get("type", "").lower() if e.type == "multipart/related" else e.type
        if kind in ("", "*/*", "image/*"):
            return JPEG
        if kind in MEDIA:
            return kind
    raise UnsupportedMedia("rendered images are available as image/jpeg or image/png")


def parse_window(text: str | None) -> Window | None:
    """``window=center,width[,function]`` (function: linear, linear-exact, sigmoid)."""
    if text is None or not text.strip():
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise BadRequest("window must be center,width[,function]")
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError as exc:
        raise BadRequest("window center and width must be numbers") from exc
    function = (parts[2] if len(parts) == 3 and parts[2] else "linear").lower().replace("_", "-")
    if function not in FUNCTIONS:
        raise BadRequest(f"window function must be one of {', '.join(FUNCTIONS)}")
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0 or (function == "linear" and width < 1):
        raise BadRequest("window width must be positive (at least 1 for linear)")
    return Window(center, width, function)


def parse_viewport(text: str | None) -> tuple[int | None, int | None] | None:
    """``viewport=vw,vh`` (either may be empty); the source-region form is not supported (400)."""
    if text is None or not text.strip():
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2:
        raise BadRequest("viewport must be vw,vh (the sx,sy,sw,sh region form is not supported)")
    out: list[int | None] = []
    for p in parts:
        if not p:
            out.append(None)
            continue
        if not p.isdigit() or not 0 < int(p) <= MAX_VIEWPORT:
            raise BadRequest(f"viewport sizes must be integers from 1 to {MAX_VIEWPORT}")
        out.append(int(p))
    if out == [None, None]:
        return None
    return out[0], out[1]


def parse_quality(text: str | None, default: int = DEFAULT_QUALITY) -> int:
    if text is None or not text.strip():
        return default
    if not text.strip().isdigit() or not 1 <= int(text) <= 100:
        raise BadRequest("quality must be an integer from 1 to 100")
    return int(text)


def options(accept: str | None, window: str | None, viewport: str | None, quality: str | None, *,
            default_viewport: tuple[int | None, int | None] | None = None,
            default_quality: int = DEFAULT_QUALITY) -> RenderOptions:
    """Parse the query parameters first (400), then the media type (406)."""
    w, v, q = parse_window(window), parse_viewport(viewport), parse_quality(quality, default_quality)
    return RenderOptions(choose_media(accept), w, v or default_viewport, q)


# --- the pipeline ---------------------------------------------------------------------------------------


def _frame_item(ds: Dataset, index: int, sequence: str) -> Dataset | None:
    """The first item of ``sequence`` for frame ``index``: per-frame groups first, then the shared ones."""
    for groups, i in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        items = ds.get(groups)
        if items and len(items) > i:
            inner = items[i].get(sequence)
            if inner:
                return inner[0]  # type: ignore[no-any-return]
    return None


def _frame_dataset(ds: Dataset, index: int) -> Dataset:
    """``ds`` with the rescale and window of frame ``index`` lifted from the functional groups (enhanced
    multi-frame objects keep them there)."""
    out = ds
    transform = _frame_item(ds, index, "PixelValueTransformationSequence")
    voi = _frame_item(ds, index, "FrameVOILUTSequence")
    if transform is None and voi is None:
        return ds
    out = Dataset()
    out.update(ds)
    for source, names in ((transform, ("RescaleSlope", "RescaleIntercept", "RescaleType")),
                          (voi, ("WindowCenter", "WindowWidth", "VOILUTFunction"))):
        if source is not None:
            for name in names:
                if name in source and name not in ds:
                    setattr(out, name, source[name].value)
    return out


def _first(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        value = value[0] if len(value) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def window_of(ds: Dataset) -> Window | None:
    """The data set's first window, if it has a usable one."""
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").lower().replace("_", "-")
    if function not in FUNCTIONS:
        function = "linear"
    if function == "linear" and width < 1:
        width = 1.0
    return Window(center, width, function)


def apply_window(values: np.ndarray, w: Window) -> np.ndarray:
    """PS3.3 C.11.2.1.2 (and .3.1 / .3.2) onto 0..1."""
    x = values.astype(np.float64)
    c, width = w.center, w.width
    if w.function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - c) / width))
    if w.function == "linear-exact":
        return np.clip((x - c) / width + 0.5, 0.0, 1.0)
    if width <= 1:
        return (x > c - 0.5).astype(np.float64)
    return np.clip((x - (c - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _min_max(values: np.ndarray) -> np.ndarray:
    x = values.astype(np.float64)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.zeros_like(x)
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return np.full_like(x, 0.0 if hi <= 0 else 1.0)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def _lut_bits(ds: Dataset) -> int:
    item = ds.VOILUTSequence[0]
    descriptor = item.get("LUTDescriptor") or [0, 0, 16]
    bits = int(descriptor[2]) if len(descriptor) > 2 else 16
    return bits if 1 <= bits <= 16 else 16


def to_unit(arr: np.ndarray, ds: Dataset, window: Window | None) -> np.ndarray:
    """A grayscale frame through the Modality LUT and VOI onto 0..1 (1 = brightest before MONOCHROME1)."""
    values = apply_modality_lut(arr, ds) if ("RescaleSlope" in ds or "ModalityLUTSequence" in ds) else arr
    if window is not None:
        return apply_window(values, window)
    own = window_of(ds)
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence) and "LUTData" in ds.VOILUTSequence[0]:
        try:
            out = apply_voi_lut(values, ds, index=0, prefer_lut=True)
            return np.clip(out.astype(np.float64) / float(2 ** _lut_bits(ds) - 1), 0.0, 1.0)
        except Exception as exc:  # a malformed LUT: fall through to the window or min/max
            log.info("VOI LUT not usable, falling back", extra={"error": type(exc).__name__})
    if own is not None:
        return apply_window(values, own)
    return _min_max(values)


_LUTS: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
_LUTS_MAX = 32
_LUTS_LOCK = threading.Lock()


def _lut_key(arr: np.ndarray, ds: Dataset, window: Window | None, photometric: str) -> tuple[Any, ...] | None:
    """What a 16-bit (or 8-bit) grayscale frame's 8-bit lookup table depends on, or None when the frame needs
    the full pipeline (a VOI or Modality LUT Sequence, no window at all: min/max of the frame)."""
    if arr.dtype not in (np.uint8, np.int8, np.uint16, np.int16) or arr.ndim != 2:
        return None
    if "ModalityLUTSequence" in ds or "VOILUTSequence" in ds:
        return None
    own = window if window is not None else window_of(ds)
    if own is None:
        return None
    rescale = ("RescaleSlope" in ds, str(ds.get("RescaleSlope", "")), str(ds.get("RescaleIntercept", "")),
               str(ds.get("RescaleType", "")))
    return (arr.dtype.str, rescale, window, window is None and own, photometric)


def _lut(arr: np.ndarray, ds: Dataset, window: Window | None, photometric: str, key: tuple[Any, ...],
         unused_bits: int = 0) -> np.ndarray:
    """The frame's pipeline applied once to every possible stored value (cached): then one lookup per pixel.
    ``unused_bits``: the high bits pydicom's decoder would clear (or sign-extend) first, done here instead."""
    key = (*key, unused_bits)
    with _LUTS_LOCK:
        lut = _LUTS.get(key)
        if lut is not None:
            _LUTS.move_to_end(key)
            return lut
    unsigned = np.dtype(arr.dtype.str.replace("i", "u"))
    domain = np.arange(2 ** (8 * arr.dtype.itemsize), dtype=unsigned).view(arr.dtype)  # indexed by the bits
    if unused_bits:
        domain = np.right_shift(np.left_shift(domain, unused_bits), unused_bits)
    lut = _pipeline(domain.reshape(1, -1), ds, window, photometric).reshape(-1)
    with _LUTS_LOCK:
        _LUTS[key] = lut
        while len(_LUTS) > _LUTS_MAX:
            _LUTS.popitem(last=False)
    return lut


def _pipeline(arr: np.ndarray, ds: Dataset, window: Window | None, photometric: str) -> np.ndarray:
    unit = to_unit(arr, ds, window)
    if photometric == "MONOCHROME1":
        unit = 1.0 - unit
    return np.ascontiguousarray(np.clip(unit * 255.0 + 0.5, 0, 255).astype(np.uint8))


def to_8bit(arr: np.ndarray, ds: Dataset, window: Window | None) -> np.ndarray:
    """One decoded frame to an 8-bit L (rows x cols) or RGB (rows x cols x 3) array."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper().strip()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        if rgb.dtype.itemsize > 1 and rgb.max() > 255:
            rgb = rgb >> 8 if rgb.dtype.kind == "u" else np.clip(rgb / 257, 0, 255)
        return np.ascontiguousarray(rgb[..., :3].astype(np.uint8))
    if samples > 1 or arr.ndim == 3:
        if arr.ndim != 3 or arr.shape[-1] < 3:
            raise RenderError(f"unexpected colour frame shape {arr.shape}")
        rgb = arr[..., :3]
        if rgb.dtype.itemsize > 1 or rgb.dtype.kind == "f":
            stored = int(ds.get("BitsStored", 8 * rgb.dtype.itemsize) or 8)
            top = float(2 ** stored - 1) if rgb.dtype.kind != "f" else float(rgb.max() or 1.0)
            rgb = np.clip(rgb.astype(np.float64) / top * 255.0 + 0.5, 0, 255)
        return np.ascontiguousarray(rgb.astype(np.uint8))
    if arr.ndim != 2:
        raise RenderError(f"unexpected grayscale frame shape {arr.shape}")
    key = _lut_key(arr, ds, window, photometric)
    if key is not None:  # the same numbers as the full pipeline, computed once per stored value
        unsigned = arr.view(arr.dtype.str.replace("i", "u")) if arr.dtype.kind == "i" else arr
        return np.ascontiguousarray(_lut(arr, ds, window, photometric, key)[unsigned])
    return _pipeline(arr, ds, window, photometric)


def fit(width: int, height: int, viewport: tuple[int | None, int | None] | None) -> tuple[int, int]:
    """The size that fits ``width x height`` inside the viewport, aspect kept (both unset: unchanged)."""
    if viewport is None:
        return width, height
    vw, vh = viewport
    scales = [s for s in ((vw / width) if vw else None, (vh / height) if vh else None) if s is not None]
    scale = min(scales)
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode(pixels: np.ndarray, opts: RenderOptions) -> bytes:
    image = Image.fromarray(pixels, "RGB" if pixels.ndim == 3 else "L")
    size = fit(image.width, image.height, opts.viewport)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS if size[0] < image.width else Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    if opts.media == PNG:
        image.save(buf, format="PNG", compress_level=3)
    else:
        image.save(buf, format="JPEG", quality=opts.quality)
    return buf.getvalue()


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _decode(path: Path | Dataset, index: int) -> np.ndarray:
    """Frame ``index`` from the file (only that frame is read) or from a data set read whole; deflated files
    and a few odd encapsulations (no Basic Offset Table item) need the whole data set parsed first."""
    try:
        return pixel_array(path, index=index)
    except (ValueError, KeyError, AttributeError):
        if isinstance(path, Dataset):
            raise
        full = pydicom.dcmread(path, force=True)
        if "PixelData" not in full and "FloatPixelData" not in full and "DoubleFloatPixelData" not in full:
            raise
        return pixel_array(full, index=index)


NATIVE_LE = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")  # Explicit / Implicit VR Little Endian


def _native_gray(ds: Dataset, index: int, window: Window | None) -> np.ndarray | None:
    """The 8-bit frame of a plain uncompressed grayscale image straight from its Pixel Data bytes through the
    cached lookup table (no decoder pass, no copy); None for anything else (the general path takes it)."""
    meta = getattr(ds, "file_meta", None)
    ts = str(getattr(meta, "TransferSyntaxUID", "") or "")
    photometric = str(ds.get("PhotometricInterpretation", "")).upper().strip()
    if (ts not in NATIVE_LE or photometric not in ("MONOCHROME1", "MONOCHROME2") or "PixelData" not in ds
            or "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds):
        return None
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        allocated, stored = int(ds.BitsAllocated), int(ds.get("BitsStored", ds.BitsAllocated))
        signed, samples = int(ds.get("PixelRepresentation", 0)), int(ds.get("SamplesPerPixel", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return None
    if samples != 1 or allocated not in (8, 16) or not 0 < stored <= allocated or rows < 1 or cols < 1:
        return None
    dtype = np.dtype(("<i" if signed else "<u") + str(allocated // 8))
    data = ds.PixelData
    size = rows * cols * dtype.itemsize
    if not isinstance(data, bytes) or len(data) < size * (index + 1):
        return None
    raw = np.frombuffer(data, dtype=dtype, count=rows * cols, offset=size * index).reshape(rows, cols)
    key = _lut_key(raw, ds, window, photometric)
    if key is None:
        return None
    lut = _lut(raw, ds, window, photometric, key, unused_bits=allocated - stored)
    return np.ascontiguousarray(lut[raw.view(dtype.str.replace("i", "u"))])


def render_file(path: Path | bytes, frame: int, opts: RenderOptions) -> bytes:
    """Frame ``frame`` (1-based) of the instance stored at ``path`` (or held in memory) as ``opts.media``.

    An instance in memory is parsed once, pixel data included; a file is read twice (its header, then only
    the frame asked for), so a large multi-frame object never meets memory whole."""
    try:
        if isinstance(path, bytes):
            ds = pydicom.dcmread(io.BytesIO(path), force=True)
        else:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:
        raise RenderError(f"not a readable DICOM file ({type(exc).__name__})") from exc
    if frame < 1 or frame > frame_count(ds):
        raise RenderError(f"frame {frame} does not exist: the instance has {frame_count(ds)} frame(s)")
    if isinstance(path, bytes) and (fast := _native_gray(ds, frame - 1, opts.window)) is not None:
        return encode(fast, opts)
    try:
        arr = _decode(ds if isinstance(path, bytes) else path, frame - 1)
    except Exception as exc:  # decoders raise many kinds on data they cannot handle
        message = " ".join(str(exc).split())[:300]
        if "no pixel data" in message.lower() or "(7FE0" in message.upper():
            raise RenderError("the instance has no pixel data") from exc
        raise RenderError(f"the pixel data cannot be decoded ({type(exc).__name__}: {message})") from exc
    if arr.ndim == 3 and int(ds.get("SamplesPerPixel", 1) or 1) == 1 and arr.shape[0] == 1:
        arr = arr[0]
    try:
        pixels = to_8bit(arr, _frame_dataset(ds, frame - 1), opts.window)
    except RenderError:
        raise
    except Exception as exc:
        raise RenderError(f"the image cannot be rendered ({type(exc).__name__}: {str(exc)[:200]})") from exc
    return encode(pixels, opts)
