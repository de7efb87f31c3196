"""WADO-RS rendered resources, thumbnails and WADO-URI images.

Every pixel-bearing file of pydicom's test set and pydicom-data (plus the deflated ``image_dfl.dcm``, whose
pixel tag is compressed) goes in by STOW under fresh UIDs and renders to a JPEG and a PNG that Pillow opens,
of Rows x Columns; the few whose pixel data no installed decoder reads answer 422 with the reason. Then the
rendering rules on small made-up instances: MONOCHROME1 inverted, windows and their functions, rescale,
signed pixels, the data set's own window, viewport, quality, frames, thumbnails and their cache, series and
study multipart, WADO-URI, 406/404/422/400.
"""

from __future__ import annotations

import io
import random
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from tests.conftest import auth
from tests.imaging.imaging_support import make_instance, pixel_bearing_test_files, quiet_pydicom, read, stow, uid
from tests.imaging.test_dicomweb_stow import NOT_STORABLE

quiet_pydicom()

# Stored fine, but no installed pixel-data plugin decodes them (pydicom's own tests say the same): 422.
UNDECODABLE = {
    "JPEG-lossy.dcm": "cannot be decoded",  # 12-bit JPEG extended with a misplaced marker (libjpeg refuses)
    "JPEG2000-embedded-sequence-delimiter.dcm": "cannot be decoded",  # a J2K header openjpeg cannot read
    "badVR.dcm": "cannot be decoded",  # an IS value '1A' in the image pixel module
}
BATCH = 25


def _same_length_uid(old: str) -> str:
    """A fresh UID exactly as long as ``old`` (so it can replace it byte for byte)."""
    digits = "".join(random.choice("0123456789") for _ in range(max(1, len(old) - 6)))
    return ("2.25.1" + digits)[:len(old)] if len(old) >= 7 else uid()


def fresh(path: Path) -> tuple[bytes, tuple[str, str, str]]:
    """The file under new Study/Series/SOP Instance UIDs: replaced byte for byte (pixel data untouched)
    when the UIDs are visible in the bytes, else (deflate) re-written by pydicom."""
    data = path.read_bytes()
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    olds = [str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)]
    if all(o.encode() in data for o in olds) and len(set(olds)) == 3 and all(len(o) >= 7 for o in olds):
        for o in sorted(olds, key=len, reverse=True):  # a SOP UID often extends its series UID
            data = data.replace(o.encode(), _same_length_uid(o).encode())
        got = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        ids = (str(got.StudyInstanceUID), str(got.SeriesInstanceUID), str(got.SOPInstanceUID))
        if not set(ids) & set(olds):
            return data, ids
    full = pydicom.dcmread(path)
    full.StudyInstanceUID, full.SeriesInstanceUID = uid(), uid()
    full.SOPInstanceUID = full.file_meta.MediaStorageSOPInstanceUID = uid()
    buf = io.BytesIO()
    full.save_as(buf)
    return buf.getvalue(), (str(full.StudyInstanceUID), str(full.SeriesInstanceUID), str(full.SOPInstanceUID))


def _url(base: str, ids: tuple[str, ...], tail: str) -> str:
    names = ("studies", "series", "instances")
    return f"{base}/dicom-web/" + "/".join(f"{n}/{i}" for n, i in zip(names, ids, strict=False)) + tail


def _image(r: httpx.Response) -> Image.Image:
    image = Image.open(io.BytesIO(r.content))
    image.load()
    return image


def _parts(r: httpx.Response) -> list[tuple[str, bytes]]:
    head = f"Content-Type: {r.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + r.content)
    return [(p.get_content_type(), p.get_payload(decode=True)) for p in message.iter_parts()]


@pytest.fixture(scope="module")
def http() -> Any:
    with httpx.Client(timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def corpus(platform, login) -> dict[str, Any]:
    """Every pixel-bearing test file, STOWed under fresh UIDs."""
    token = login("tech_a")
    files = [p for p in pixel_bearing_test_files() if p.name not in NOT_STORABLE]
    files.append(Path(get_testdata_file("image_dfl.dcm")))
    items = [(p, *fresh(p)) for p in files]
    for i in range(0, len(items), BATCH):
        batch = items[i:i + BATCH]
        r = stow(platform.gateway_url, token, [data for _, data, _ in batch])
        assert r.status_code == 200, r.text[:2000]
    return {"token": token, "files": {p: ids for p, _, ids in items}}


def test_every_pixel_bearing_file_renders_as_jpeg_and_png(platform, corpus, http) -> None:
    base, headers = platform.service_url("imaging"), auth(corpus["token"])
    assert len(corpus["files"]) >= 150
    problems, refused = [], {}
    for path, ids in corpus["files"].items():
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        size = (int(ds.Columns), int(ds.Rows))
        for media, fmt in (("image/jpeg", "JPEG"), ("image/png", "PNG")):
            r = http.get(_url(base, ids, "/rendered"), headers={**headers, "Accept": media})
            if r.status_code == 422:
                refused[path.name] = r.json()["detail"]
                continue
            if r.status_code != 200 or r.headers["content-type"] != media:
                problems.append((path.name, media, r.status_code, r.text[:200]))
                continue
            image = _image(r)
            if image.format != fmt or image.size != size:
                problems.append((path.name, media, image.format, image.size, size))
    assert not problems, problems
    assert set(refused) == set(UNDECODABLE), refused
    for name, words in UNDECODABLE.items():
        assert words in refused[name], (name, refused[name])


def test_colour_files_render_their_pixels(platform, corpus, http) -> None:
    """RGB, YBR (converted by the decoder) and palette colour come out as the pixels pydicom sees."""
    from pydicom.pixels import apply_color_lut

    base, headers = platform.service_url("imaging"), auth(corpus["token"])
    by_name = {p.name: (p, ids) for p, ids in corpus["files"].items()}
    for name in ("SC_rgb.dcm", "SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle.dcm", "SC_ybr_full_uncompressed.dcm",
                 "SC_rgb_dcmtk_+eb+cy+np.dcm", "OBXXXX1A.dcm", "US1_J2KR.dcm"):
        path, ids = by_name[name]
        ds = pydicom.dcmread(path)
        expected = ds.pixel_array[0] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else ds.pixel_array
        if ds.PhotometricInterpretation == "PALETTE COLOR":
            expected = apply_color_lut(expected, ds)
            expected = (expected >> 8) if expected.max() > 255 else expected
        r = http.get(_url(base, ids, "/rendered"), headers={**headers, "Accept": "image/png"})
        got = np.asarray(_image(r).convert("RGB"))
        assert got.shape == expected.shape, name
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1, name


# --- rendering rules on made-up instances ---------------------------------------------------------------


def _dataset(pixels: np.ndarray, **attrs: Any) -> bytes:
    """A CT-like instance around ``pixels`` (frames x rows x cols, or rows x cols)."""
    frames = pixels.shape[0] if pixels.ndim == 3 else 1
    rows, cols = pixels.shape[-2:]
    ds = read(make_instance(rows=rows, columns=cols, frames=frames, study=attrs.pop("study", None),
                            series=attrs.pop("series", None), instance_number=attrs.pop("number", 1)))
    signed = pixels.dtype.kind == "i"
    ds.PixelRepresentation = 1 if signed else 0
    ds.BitsStored, ds.HighBit = 16, 15
    ds.PixelData = pixels.astype("<i2" if signed else "<u2").tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _no_pixels(study: str, series: str) -> bytes:
    ds = read(make_instance(study=study, series=series, instance_number=99))
    for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
                    "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation"):
        delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    ds.Modality = "SR"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture(scope="module")
def made(platform, login) -> dict[str, Any]:
    token = login("tech_a")
    study, series, other_series = uid(), uid(), uid()
    ramp = np.arange(16 * 32, dtype=np.int32).reshape(16, 32)  # wider than tall
    frames = np.stack([ramp, ramp[::-1], ramp[:, ::-1]]).astype(np.uint16)
    files = {
        "m2": _dataset(ramp.astype(np.uint16), study=study, series=series, number=1),
        "m1": _dataset(ramp.astype(np.uint16), study=study, series=series, number=2,
                       PhotometricInterpretation="MONOCHROME1"),
        "signed": _dataset((ramp - 256).astype(np.int16), study=study, series=series, number=3),
        "rescaled": _dataset(np.array([[0, 1024], [2048, 1024]], dtype=np.uint16), study=study, series=series,
                             number=4, RescaleSlope=1, RescaleIntercept=-1024),
        "own_window": _dataset(ramp.astype(np.uint16), study=study, series=series, number=5, WindowCenter=100,
                               WindowWidth=50),
        "multi": _dataset(frames, study=study, series=other_series, number=1),
        "sr": _no_pixels(study, other_series),
    }
    r = stow(platform.gateway_url, token, list(files.values()), study=study)
    assert r.status_code == 200, r.text
    sops = {k: str(read(v).SOPInstanceUID) for k, v in files.items()}
    return {"token": token, "study": study, "series": series, "other": other_series, "sop": sops}


def _get(platform: Any, made: dict[str, Any], key: str | None, tail: str, *, accept: str = "image/png",
         series: str | None = None, token: str | None = None, gateway: bool = False) -> httpx.Response:
    ids: tuple[str, ...] = (made["study"],)
    if key is not None:
        ids = (made["study"], series or (made["other"] if key in ("multi", "sr") else made["series"]),
               made["sop"][key])
    elif series is not None:
        ids = (made["study"], series)
    base = platform.gateway_url if gateway else platform.service_url("imaging")
    return httpx.get(_url(base, ids, tail), headers={**auth(token or made["token"]), "Accept": accept}, timeout=60)


def _pixels(r: httpx.Response) -> np.ndarray:
    assert r.status_code == 200, r.text
    return np.asarray(_image(r)).astype(int)


def test_monochrome1_is_the_inverse_of_monochrome2(platform, made) -> None:
    m2, m1 = _pixels(_get(platform, made, "m2", "/rendered")), _pixels(_get(platform, made, "m1", "/rendered"))
    assert m2.shape == (16, 32) and m2.min() == 0 and m2.max() == 255
    assert np.array_equal(m1, 255 - m2)
    windowed = "/rendered?window=200,100"
    assert np.array_equal(_pixels(_get(platform, made, "m1", windowed)),
                          255 - _pixels(_get(platform, made, "m2", windowed)))


def test_a_window_changes_the_render_and_its_functions_differ(platform, made) -> None:
    default = _pixels(_get(platform, made, "m2", "/rendered"))
    outs = {f: _pixels(_get(platform, made, "m2", f"/rendered?window=256,128,{f}"))
            for f in ("linear", "linear-exact", "sigmoid")}
    assert not np.array_equal(default, outs["linear"])
    flat = outs["linear"].ravel()  # the ramp: 0..191 black, 320.. white, a slope in between
    assert flat[:190].max() == 0 and flat[321:].min() == 255 and 0 < flat[256] < 255
    assert not np.array_equal(outs["linear"], outs["sigmoid"])
    assert outs["sigmoid"].ravel()[256] == 128 and outs["sigmoid"].ravel()[192] > 0  # 1/(1+e^2) at c-w/2
    for bad in ("1", "a,b", "10,0", "10,20,cubic"):
        assert _get(platform, made, "m2", f"/rendered?window={bad}").status_code == 400, bad


def test_rescale_applies_before_the_window(platform, made) -> None:
    """Stored 0/1024/2048 with intercept -1024 are HU -1024/0/1024: window 0,100 → black, mid, white."""
    px = _pixels(_get(platform, made, "rescaled", "/rendered?window=0,100"))
    assert px[0, 0] == 0 and px[1, 0] == 255 and 100 < px[0, 1] < 160


def test_signed_pixels_span_the_range(platform, made) -> None:
    px = _pixels(_get(platform, made, "signed", "/rendered"))
    assert px[0, 0] == 0 and px[-1, -1] == 255  # -256 is the darkest, 255 the brightest
    assert np.all(np.diff(px.ravel()) >= 0)


def test_the_data_sets_own_window_is_the_default(platform, made) -> None:
    own = _pixels(_get(platform, made, "own_window", "/rendered"))
    explicit = _pixels(_get(platform, made, "m2", "/rendered?window=100,50"))
    assert np.array_equal(own, explicit)


def test_viewport_keeps_the_aspect_and_quality_changes_the_jpeg(platform, made) -> None:
    assert _image(_get(platform, made, "m2", "/rendered?viewport=100,100")).size == (100, 50)
    assert _image(_get(platform, made, "m2", "/rendered?viewport=8,100")).size == (8, 4)
    assert _image(_get(platform, made, "m2", "/rendered?viewport=,64")).size == (128, 64)
    big = _get(platform, made, "m2", "/rendered?viewport=512,512&quality=95", accept="image/jpeg")
    small = _get(platform, made, "m2", "/rendered?viewport=512,512&quality=5", accept="image/jpeg")
    assert _image(big).size == (512, 256) and len(small.content) < len(big.content)
    for bad in ("viewport=0,10", "viewport=1,2,3,4", "quality=0", "quality=101", "quality=x"):
        assert _get(platform, made, "m2", f"/rendered?{bad}").status_code == 400, bad


def test_frames_of_a_multi_frame_instance(platform, made) -> None:
    frames = [_pixels(_get(platform, made, "multi", f"/frames/{f}/rendered")) for f in (1, 2, 3)]
    assert np.array_equal(frames[1], frames[0][::-1]) and np.array_equal(frames[2], frames[0][:, ::-1])
    assert np.array_equal(_pixels(_get(platform, made, "multi", "/rendered")), frames[0])
    r = _get(platform, made, "multi", "/frames/3,1/rendered")
    assert r.status_code == 200 and r.headers["content-type"].startswith('multipart/related; type="image/png"')
    parts = _parts(r)
    assert [p[0] for p in parts] == ["image/png", "image/png"]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(parts[0][1]))).astype(int), frames[2])
    assert _get(platform, made, "multi", "/frames/4/rendered").status_code == 404
    assert _get(platform, made, "multi", "/frames/0/rendered").status_code == 400
    assert _get(platform, made, "multi", "/frames/x/rendered").status_code == 400


def test_series_and_study_rendered_are_multipart(platform, made) -> None:
    r = _get(platform, made, None, "/rendered", series=made["series"], accept="image/jpeg", gateway=True)
    assert r.status_code == 200, r.text
    parts = _parts(r)
    assert len(parts) == 5 and all(t == "image/jpeg" for t, _ in parts)
    r = _get(platform, made, None, "/rendered", accept="image/jpeg")
    assert len(_parts(r)) == 6  # the SR has no pixels: left out


def test_thumbnails(platform, made, stack) -> None:
    for key, series, size in ((None, None, (128, 64)), (None, "other", (128, 64)), ("m2", None, (128, 64))):
        r = _get(platform, made, key, "/thumbnail", accept="image/jpeg",
                 series=made["other"] if series else None, gateway=True)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", r.text
        assert _image(r).format == "JPEG" and _image(r).size == size
    r = _get(platform, made, "m2", "/thumbnail?viewport=40,40", accept="image/png")
    assert _image(r).size == (40, 20) and _image(r).format == "PNG"
    assert _get(platform, made, None, "/thumbnail", accept="*/*").headers["content-type"] == "image/jpeg"
    cached = list(Path(stack.var_dir).rglob(f"imaging/thumbs/{made['sop']['m2']}/*"))
    assert cached, "thumbnails are cached in object storage"
    again = _get(platform, made, "m2", "/thumbnail?viewport=40,40", accept="image/png")
    assert again.content == r.content


def test_errors(platform, made, login) -> None:
    assert _get(platform, made, "m2", "/rendered", accept="image/gif").status_code == 406
    assert _get(platform, made, "m2", "/rendered", accept="application/dicom").status_code == 406
    r = _get(platform, made, "sr", "/rendered")
    assert r.status_code == 422 and "no pixel data" in r.json()["detail"]
    assert _get(platform, made, "sr", "/thumbnail").status_code == 422
    other = login("tech_b")
    for key, tail in (("m2", "/rendered"), ("m2", "/thumbnail"), (None, "/thumbnail"), (None, "/rendered"),
                      ("multi", "/frames/1/rendered")):
        r = _get(platform, made, key, tail, token=other, gateway=True)
        assert r.status_code == 404, (key, tail, r.status_code)
    assert _get(platform, made, "m2", "/rendered", accept="image/gif", token=other).status_code == 404


def _wado(platform: Any, made: dict[str, Any], key: str, query: str, token: str | None = None) -> httpx.Response:
    series = made["other"] if key in ("multi", "sr") else made["series"]
    url = (f"{platform.gateway_url}/wado?requestType=WADO&studyUID={made['study']}&seriesUID={series}"
           f"&objectUID={made['sop'][key]}{query}")
    return httpx.get(url, headers=auth(token or made["token"]), timeout=60)


def test_wado_uri_images(platform, made, login) -> None:
    for query in ("", "&contentType=image/jpeg", "&contentType=image%2Fjpeg"):
        r = _wado(platform, made, "m2", query)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", (query, r.text)
        assert _image(r).size == (32, 16)
    r = _wado(platform, made, "m2", "&contentType=image%2Fpng&windowCenter=100&windowWidth=50")
    assert np.array_equal(_pixels(r), _pixels(_get(platform, made, "m2", "/rendered?window=100,50")))
    r = _wado(platform, made, "multi", "&contentType=image/png&frameNumber=2&columns=64&rows=64")
    assert _image(r).size == (64, 32)
    assert _wado(platform, made, "multi", "&frameNumber=9").status_code == 404
    assert _wado(platform, made, "m2", "&contentType=image/gif").status_code == 406
    dicom = _wado(platform, made, "sr", "")  # no pixels: application/dicom by default
    assert dicom.headers["content-type"] == "application/dicom"
    assert _wado(platform, made, "m2", "&contentType=image/jpeg", token=login("tech_b")).status_code == 404


def test_rendering_leaves_the_event_loop_free(platform, made) -> None:
    """A health check answers while renders run."""
    import concurrent.futures
    import time

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        jobs = [pool.submit(_get, platform, made, "m2", f"/rendered?viewport={600 + i},{600 + i}")
                for i in range(4)]
        started = time.monotonic()
        health = httpx.get(f"{platform.service_url('imaging')}/healthz", timeout=10)
        took = time.monotonic() - started
        assert all(j.result().status_code == 200 for j in jobs)
    assert health.status_code == 200 and took < 2
