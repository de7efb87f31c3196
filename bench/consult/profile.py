"""Where the consult service's CPU goes in a room.

- :func:`perf_during`: ``perf record`` (sampling, no call graphs) of the consult process for a few seconds,
  summed by shared object (libvpx = VP8 encode + decode, libopus = audio, libavcodec/libswresample/libswscale,
  libcrypto/libsrtp = SRTP and DTLS, the Python interpreter = aiortc's RTP/RTCP, jitter buffers, packetizing,
  asyncio, the kernel = sockets) and by thread (the event loop is the main thread). The libraries in PyAV's
  wheel are stripped, so encode and decode are not told apart by symbol: :func:`codec_costs` measures them.
- :func:`codec_costs`: CPU time (``time.thread_time``) of one VP8 decode and one encode of the benchmark's
  640x480 synthetic video with aiortc's own ``Vp8Encoder``/``Vp8Decoder`` (the encoder as a sender uses it:
  500 kbps, realtime), and the same for Opus, in this process, single-threaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

CLK = os.sysconf("SC_CLK_TCK")


def _thread_cpu(pid: int) -> dict[int, float]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / CLK
        except (OSError, IndexError, ValueError):
            continue
    return out


def _category(dso: str) -> str:
    name = Path(dso.strip("()")).name
    for key, label in (("libvpx", "libvpx (VP8 encode + decode)"), ("libopus", "libopus (audio)"),
                       ("libswresample", "libswresample (audio resampling)"),
                       ("libswscale", "libswscale"), ("libavcodec", "libavcodec (codec glue)"),
                       ("libavutil", "libavutil"), ("libsrtp", "libsrtp / crypto (SRTP)"),
                       ("libcrypto", "libsrtp / crypto (SRTP)"), ("_cffi", "cffi bindings"),
                       ("kernel", "kernel (sockets, scheduling)"), ("python", "Python interpreter (aiortc, asyncio)"),
                       ("libc.so", "libc (memcpy, malloc)"), ("libc-", "libc (memcpy, malloc)"),
                       ("numpy", "numpy"), ("av/", "PyAV bindings")):
        if key in dso:
            return label
    if name.endswith(".so") and "av" in dso:
        return "PyAV bindings"
    return name or "unknown"


def perf_during(pid: int, seconds: float, work: Path) -> dict[str, Any]:
    perf = shutil.which("perf")
    before, t0 = _thread_cpu(pid), time.monotonic()
    out: dict[str, Any] = {"seconds": round(seconds, 1)}
    if not perf:
        time.sleep(seconds)
        out["perf"] = "perf not installed: only per-thread CPU"
    else:
        data = work / "perf.data"
        r = subprocess.run([perf, "record", "-F", "199", "-p", str(pid), "-o", str(data), "--", "sleep",
                            str(seconds)], capture_output=True, text=True)
        if r.returncode != 0:
            out["perf"] = f"perf record failed: {r.stderr[-500:]}"
    after, dt = _thread_cpu(pid), time.monotonic() - t0
    per_thread = {tid: (after[tid] - before.get(tid, 0.0)) / dt for tid in after}
    out["server_cores"] = round(sum(per_thread.values()), 3)
    out["event_loop_thread_cores"] = round(per_thread.get(pid, 0.0), 3)
    out["other_threads"] = sorted((round(c, 3) for t, c in per_thread.items() if t != pid and c > 0.005),
                                  reverse=True)
    if perf and "perf" not in out:
        script = subprocess.run([perf, "script", "-i", str(work / "perf.data"), "-F", "tid,ip,dso"],
                                capture_output=True, text=True).stdout
        by_dso: Counter[str] = Counter()
        by_tid: dict[int, Counter[str]] = defaultdict(Counter)
        for line in script.splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[0].isdigit() or "(" not in line:
                continue
            tid, cat = int(parts[0]), _category(line[line.rindex("("):])
            by_dso[cat] += 1
            by_tid[tid][cat] += 1
        total = sum(by_dso.values()) or 1
        out["samples"] = total
        out["share_by_library"] = {k: round(v / total, 3) for k, v in by_dso.most_common()}
        out["cores_by_library"] = {k: round(v / total * out["server_cores"], 3) for k, v in by_dso.most_common()}
        threads = []
        for tid, c in sorted(by_tid.items(), key=lambda kv: -sum(kv[1].values())):
            n = sum(c.values())
            top = ", ".join(f"{k} {v / n:.0%}" for k, v in c.most_common(3))
            threads.append({"thread": "event loop (main)" if tid == pid else f"tid {tid}",
                            "cores": round(per_thread.get(tid, 0.0), 3), "samples": n, "top": top})
        out["threads"] = threads[:16]
    return out


def codec_costs(width: int, height: int, fps: int, frames: int = 150) -> dict[str, Any]:
    """CPU ms per frame of VP8 encode and decode (aiortc's codecs, 500 kbps realtime) and Opus, one thread."""
    import fractions

    import numpy as np
    from aiortc.codecs import get_decoder, get_encoder
    from aiortc.jitterbuffer import JitterFrame
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters
    from av.audio.frame import AudioFrame
    from av.video.frame import VideoFrame

    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
    enc, dec = get_encoder(vp8), get_decoder(vp8)
    y = np.arange(height, dtype=np.uint16)[:, None]
    x = np.arange(width, dtype=np.uint16)[None, :]
    base = ((x + y) % 256).astype(np.uint8)
    chroma = np.full((height // 2, width), 128, dtype=np.uint8)
    encoded: list[tuple[bytes, int]] = []
    enc_cpu = 0.0
    for n in range(frames):
        frame = VideoFrame.from_ndarray(np.vstack([np.roll(base, n * 4, axis=1), chroma]), format="yuv420p")
        frame.pts, frame.time_base = n * 90000 // fps, fractions.Fraction(1, 90000)
        t = time.thread_time()
        payloads, ts = enc.encode(frame, n == 0)
        enc_cpu += time.thread_time() - t
        # the depacketized VP8 frame: strip each payload's descriptor as aiortc's receiver does
        from aiortc.codecs.vpx import vp8_depayload

        encoded.append((b"".join(vp8_depayload(p) for p in payloads), ts))
    dec_cpu = 0.0
    for data, ts in encoded:
        t = time.thread_time()
        dec.decode(JitterFrame(data=data, timestamp=ts))
        dec_cpu += time.thread_time() - t
    aenc, adec = get_encoder(opus), get_decoder(opus)
    aenc_cpu = adec_cpu = 0.0
    for n in range(250):
        pcm = (np.sin(2 * np.pi * 440 * (np.arange(960) + n * 960) / 48000) * 8000).astype(np.int16).reshape(1, -1)
        af = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        af.sample_rate, af.pts, af.time_base = 48000, n * 960, fractions.Fraction(1, 48000)
        t = time.thread_time()
        payloads, ts = aenc.encode(af)
        aenc_cpu += time.thread_time() - t
        t = time.thread_time()
        for p in payloads:
            adec.decode(JitterFrame(data=p, timestamp=ts))
        adec_cpu += time.thread_time() - t
    e, d = enc_cpu / frames * 1000, dec_cpu / frames * 1000
    ae, ad = aenc_cpu / 250 * 1000, adec_cpu / 250 * 1000
    return {"frames": frames, "vp8_encode_ms_per_frame": round(e, 2), "vp8_decode_ms_per_frame": round(d, 2),
            "opus_encode_ms_per_frame": round(ae, 3), "opus_decode_ms_per_frame": round(ad, 3),
            "bytes_per_frame": round(sum(len(b) for b, _ in encoded) / frames),
            "model_3_party_cores_at_fps": {
                "fps": fps,
                "video_decode (3 sources)": round(3 * fps * d / 1000, 3),
                "video_encode (6 receivers, today)": round(6 * fps * e / 1000, 3),
                "video_encode (3, once per source)": round(3 * fps * e / 1000, 3),
                "audio (3 decodes + 6 encodes, 50 frames/s)": round(50 * (3 * ad + 6 * ae) / 1000, 3)}}
