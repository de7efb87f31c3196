"""Interop: headless Chromium (fake camera and microphone) and an aiortc client in one room, through the
gateway; each receives the other's video. The page is a few lines of JS evaluated here (the consult web UI is
tested with the web app)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from services.consult.rooms.client import RoomClient, WebSocketSignal
from services.consult.rooms.ice import offer_host_addresses
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, CHROMIUM_MEDIA_ARGS
from tests.conftest import Platform
from tests.consult.test_rooms import Session

JOIN = """
async ({url, token, h264Only}) => {
  const st = window.__room = {messages: [], frames: {}, slots: {}, sent: null};
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: {width: 320, height: 240}});
  st.sent = stream.getVideoTracks()[0].getSettings();
  const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: 'max-bundle'});
  pc.addTransceiver(stream.getAudioTracks()[0], {direction: 'sendrecv'});
  pc.addTransceiver(stream.getVideoTracks()[0], {direction: 'sendrecv'});
  for (let i = 0; i < 3; i++) {
    pc.addTransceiver('audio', {direction: 'recvonly'});
    pc.addTransceiver('video', {direction: 'recvonly'});
  }
  // offer H.264 first (the server still answers VP8, its encode-once codec), or only H.264 (the server's
  // fallback: that slot gets decoded frames and its own encoder)
  const caps = RTCRtpReceiver.getCapabilities('video').codecs;
  const isH264 = (c) => c.mimeType === 'video/H264';
  const rtx = caps.filter((c) => c.mimeType === 'video/rtx');
  const rest = h264Only ? rtx : caps.filter((c) => !isH264(c));
  const h264First = [...caps.filter(isH264), ...rest];
  for (const t of pc.getTransceivers()) if (t.receiver.track.kind === 'video') t.setCodecPreferences(h264First);
  pc.ontrack = (ev) => {
    if (ev.track.kind !== 'video') return;
    const mid = ev.transceiver.mid;
    const v = document.createElement('video');
    v.muted = true; v.autoplay = true; v.playsInline = true;
    v.srcObject = new MediaStream([ev.track]);
    document.body.appendChild(v);
    const got = st.frames[mid] = {frames: 0, width: 0, height: 0};
    const tick = (now, meta) => { got.frames++; got.width = meta.width; got.height = meta.height;
                                  v.requestVideoFrameCallback(tick); };
    v.requestVideoFrameCallback(tick);
    v.play().catch(() => {});
  };
  const ws = new WebSocket(url, ['bearer', token]);
  const send = (m) => ws.send(JSON.stringify(m));
  ws.onmessage = async (ev) => {
    const m = JSON.parse(ev.data);
    st.messages.push(m.type);
    if (m.type === 'admitted') {
      st.pid = m.participant_id;
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((done) => {   // the server takes no trickled candidates: send them in the offer
        if (pc.iceGatheringState === 'complete') return done();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
      });
      send({type: 'offer', sdp: pc.localDescription.sdp});
    } else if (m.type === 'answer') {
      await pc.setRemoteDescription({type: 'answer', sdp: m.sdp});
    } else if (m.type === 'slots') {
      for (const s of m.slots) st.slots[s.mid] = s.participant_id;
    } else if (m.type === 'error') {
      st.error = m;
    }
  };
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
  send({type: 'join'});
  window.__pc = pc;
  return true;
}
"""

HAS_H264 = "RTCRtpReceiver.getCapabilities('video').codecs.some((c) => c.mimeType === 'video/H264')"

RECEIVED_CODECS = """
async () => {
  const stats = await window.__pc.getStats();
  const out = [];
  stats.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video' && r.codecId) out.push(stats.get(r.codecId).mimeType);
  });
  return out;
}
"""

FRAMES_FROM = """
(pid) => {
  const st = window.__room;
  const mid = Object.keys(st.slots).find((m) => st.slots[m] === pid && st.frames[m]);
  return mid ? st.frames[mid] : {frames: 0, width: 0, height: 0, state: window.__pc.connectionState,
                                 messages: st.messages, error: st.error || null};
}
"""


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    _require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + CHROMIUM_MEDIA_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.mark.parametrize("h264_only", [False, True], ids=["vp8-preferred", "h264-only-fallback"])
async def test_chromium_and_aiortc_see_each_other(platform: Platform, login: Callable[[str], str],
                                                 browser: Any, h264_only: bool) -> None:
    offer_host_addresses(["127.0.0.1"])
    session = Session(platform, login)
    host = RoomClient(await WebSocketSignal.open(session.url, session.host_token))
    page = await (await browser.new_context()).new_page()
    try:
        assert (await host.join())["type"] == "admitted"
        await host.start_media()
        await page.goto(f"{platform.gateway_url}/healthz")  # a secure origin (127.0.0.1) for getUserMedia
        if h264_only and not await page.evaluate(HAS_H264):
            pytest.skip("this Chromium has no H.264")
        await page.evaluate(JOIN, {"url": session.url, "token": session.guest_token, "h264Only": h264_only})
        lobby = await host.wait_for("lobby", lambda m: bool(m["waiting"]))
        browser_pid = lobby["waiting"][0]["participant_id"]
        await host.admit(browser_pid)
        assert host.participant_id

        got: dict[str, Any] = {}
        for _ in range(150):  # Chromium renders the host's frames
            got = await page.evaluate(FRAMES_FROM, host.participant_id)
            if got["frames"] >= 10:
                break
            await asyncio.sleep(0.1)
        assert got["frames"] >= 10, got
        assert (got["width"], got["height"]) == (320, 240), got
        # VP8 both ways (the server prefers it): Chromium decodes the host's shared encode-once packets; an
        # H.264-only browser gets the fallback (its slot re-encodes decoded frames)
        assert set(await page.evaluate(RECEIVED_CODECS)) == {"video/H264" if h264_only else "video/VP8"}

        received = await host.wait_frames(browser_pid, "video", 10, within=20)
        sent = await page.evaluate("window.__room.sent")
        assert received.width > 0 and received.height > 0
        # Chromium may start below the captured size while it estimates bandwidth; never above, same shape
        assert received.width <= sent["width"] and received.height <= sent["height"], (received, sent)
        assert abs(received.width / received.height - sent["width"] / sent["height"]) < 0.05
        assert (await host.wait_frames(browser_pid, "audio", 10)).samples > 0
    finally:
        await page.close()
        await host.close()
        session.end()
