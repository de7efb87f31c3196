"""The 3-party room: a consult with an invitee, a session, three participant processes, and what is measured.

specialist (孙主任, the consultant) is the host; doctor_a (the requester) and tech_a (invited) wait and are
admitted by the host process. The host joins first and starts its media; the guests follow ``stagger`` seconds
apart. Measured:

- join-to-first-frame: for each participant, its socket opening → its first decoded video frame from another
  participant (the host: from the first guest's socket opening, before which there is nobody to receive);
  per pair: the later of the two sockets' openings → the receiver's first decoded frame from the sender;
- received frames per second, per (receiver, sender) pair, video and audio, over the steady window and per
  interval of the soak;
- the consult service process's CPU (all its threads: /proc/<pid>/stat) over the steady window and the soak,
  the gateway's (signaling only), each participant process's apart;
- the consult service's RSS every ``sample`` seconds over the soak, and after the session ended.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.gateway.run import cpu_seconds

HOST, GUESTS = "specialist", ("doctor_a", "tech_a")


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def schedstat(pid: int, tid: int | None = None) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of a thread (default: the main thread)."""
    try:
        run, wait, _ = open(f"/proc/{pid}/task/{tid or pid}/schedstat").read().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(run) / 1e9, int(wait) / 1e9


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@dataclass
class Member:
    name: str
    proc: Any
    conn: Any
    opened: float | None = None
    media: float | None = None
    participant_id: str | None = None
    first: dict[str, dict[str, Any]] = field(default_factory=dict)  # sender pid -> {"t", "width", "height"}
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def drain(self) -> None:
        while self.conn.poll():
            try:
                m = self.conn.recv()
            except EOFError:
                return
            kind = m["event"]
            if kind == "opened":
                self.opened = m["t"]
            elif kind == "media":
                self.media, self.participant_id = m["t"], m["participant_id"]
            elif kind == "first":
                self.first[m["from"]] = m
            elif kind == "snapshot":
                self.snapshots.append(m)
            elif kind == "error":
                self.errors.append(m["detail"])

    def frames_at(self, t: float, kind: str) -> tuple[float, dict[str, int]] | None:
        """The latest snapshot at or before ``t``: (its time, frames by sender)."""
        best = None
        for s in self.snapshots:
            if s["t"] <= t:
                best = s
        return (best["t"], best[kind]) if best else None


def setup(gateway: str, tokens: dict[str, str]) -> tuple[str, str]:
    """An accepted consult of doctor_a to the county hospital with tech_a invited, and a session; (consult id,
    session id). The same steps as tests/consult/flow_support.py, with tech_a invited before acceptance."""
    import jwt

    from gateway.identity.seed import COUNTY_HOSPITAL, demo_facility

    api = f"{gateway}/api/consult"

    def h(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[user]}"}

    def ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
        if r.status_code != status:
            raise SystemExit(f"setup: {r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
        return dict(r.json()) if r.content else {}

    with httpx.Client(timeout=30) as c:
        consult = ok(c.post(f"{api}/consults", headers=h("doctor_a"), json={
            "target_facility_id": str(demo_facility(COUNTY_HOSPITAL).id), "specialty": "心内科", "urgency": "urgent",
            "reason": "胸痛待查", "question": "是否急性冠脉综合征?", "clinical_summary": "男,63岁,胸痛3小时。",
            "patient_name": "基准患者", "patient_sex": "male", "patient_age": 63}), 201)
        cid = consult["id"]
        ok(c.post(f"{api}/consults/{cid}/consent", headers=h("doctor_a"), json={
            "method": "e_consent", "signer_name": "基准患者", "relation": "本人", "statement_version": "2026-01"}), 201)
        ok(c.post(f"{api}/consults/{cid}/submit", headers=h("doctor_a")))
        tech = jwt.decode(tokens["tech_a"], options={"verify_signature": False})["sub"]
        r = c.post(f"{api}/consults/{cid}/participants", headers=h("doctor_a"), json={"user_id": tech})
        if r.status_code != 204:
            raise SystemExit(f"setup: invite tech_a: {r.status_code} {r.text[:300]}")
        ok(c.post(f"{api}/consults/{cid}/accept", headers=h(HOST), json={}))
        session = ok(c.post(f"{api}/consults/{cid}/sessions", headers=h("doctor_a"), json={}), 201)
    return cid, str(session["session_id"])


def end_session(gateway: str, token: str, session_id: str) -> int:
    r = httpx.post(f"{gateway}/api/consult/sessions/{session_id}/end",
                   headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return r.status_code


def run_room(gateway: str, tokens: dict[str, str], server_pid: int, gateway_pid: int, *, width: int, height: int,
             fps: int, warmup: float, window: float, soak_minutes: float, sample: float, stagger: float,
             log: Callable[[str], None], during_window: Callable[[], dict[str, Any]] | None = None,
             nice: int = 0, diag_url: str | None = None) -> dict[str, Any]:
    consult_id, session_id = setup(gateway, tokens)
    url = "ws" + gateway[4:] + f"/api/consult/sessions/{session_id}/signal"
    ctx = mp.get_context("spawn")
    members: dict[str, Member] = {}
    rss_idle = rss_mb(server_pid)
    cpu_idle0, t_idle0 = cpu_seconds(server_pid), time.monotonic()
    time.sleep(3)
    idle_cores = (cpu_seconds(server_pid) - cpu_idle0) / (time.monotonic() - t_idle0)

    def start(name: str, host: bool) -> Member:
        parent, child = ctx.Pipe()
        from bench.consult.participant import main as participant_main

        cfg = {"url": url, "token": tokens[name], "width": width, "height": height, "fps": fps, "host": host,
               "nice": nice}
        proc = ctx.Process(target=participant_main, args=(cfg, child), name=f"participant-{name}", daemon=True)
        proc.start()
        m = Member(name, proc, parent)
        members[name] = m
        return m

    def drain_all() -> None:
        for m in members.values():
            m.drain()
            if m.errors:
                raise SystemExit(f"participant {m.name} failed: {m.errors[0]}")

    def wait(cond: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not cond():
            drain_all()
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            time.sleep(0.05)

    result: dict[str, Any] = {"consult_id": consult_id, "session_id": session_id,
                              "video": {"width": width, "height": height, "fps": fps},
                              "server_idle": {"rss_mb": round(rss_idle, 1), "cores": round(idle_cores, 3)}}
    try:
        host = start(HOST, True)
        wait(lambda: host.media is not None, 90, "the host's media")
        for g in GUESTS:
            time.sleep(stagger)
            start(g, False)
        wait(lambda: all(len(m.first) == len(members) - 1 for m in members.values()), 120,
             "video from every participant at every participant")
        flowing = time.monotonic()
        log("room: every participant receives video from the two others")
        names = {m.participant_id: m.name for m in members.values()}
        result["join_to_first_frame"] = _first_frames(members, names)
        for row in result["join_to_first_frame"]["participants"]:
            log(f"  join-to-first-frame {row['participant']}: {row['seconds']:.2f} s ({row['measured_from']})")

        # steady window
        time.sleep(warmup)
        drain_all()
        w0 = _sample(members, server_pid, gateway_pid, diag_url)
        extra = during_window() if during_window else None
        remaining = window - (time.monotonic() - w0["t"])
        if remaining > 0:
            time.sleep(remaining)
        drain_all()
        w1 = _sample(members, server_pid, gateway_pid, diag_url)
        time.sleep(1.2)  # the next snapshot of every participant, after the window's end
        drain_all()
        result["steady"] = _interval(members, names, w0, w1)
        if extra:
            result["steady"]["profile"] = extra
        s = result["steady"]
        log(f"steady {s['seconds']:.0f} s: server {s['server_cores']:.2f} cores, fps min {s['video_fps_min']:.1f} "
            f"median {s['video_fps_median']:.1f}, clients {s['client_cores']}")

        # soak: from the moment every stream flowed; samples every ``sample`` seconds
        end = flowing + soak_minutes * 60
        samples = [w0, w1]
        last_log = time.monotonic()
        while time.monotonic() < end:
            time.sleep(min(sample, max(0.0, end - time.monotonic())))
            drain_all()
            samples.append(_sample(members, server_pid, gateway_pid, diag_url))
            if time.monotonic() - last_log >= 60:
                last_log = time.monotonic()
                a, b = samples[-2], samples[-1]
                log(f"soak {(b['t'] - flowing) / 60:.1f} min: RSS {b['rss_mb']:.1f} MB, server "
                    f"{(b['server_cpu'] - a['server_cpu']) / (b['t'] - a['t']):.2f} cores")
        time.sleep(1.2)
        drain_all()
        result["soak"] = _soak(members, names, samples, flowing, soak_minutes, sample)
        log(f"soak: RSS first minute {result['soak']['rss_first_minute_mb']} MB → end "
            f"{result['soak']['rss_end_mb']} MB ({result['soak']['rss_growth_pct']:+.1f} %)")
    finally:
        for m in members.values():
            if m.proc.is_alive():
                try:
                    m.conn.send("stop")
                except (OSError, BrokenPipeError):
                    pass
        for m in members.values():
            m.proc.join(15)
            if m.proc.is_alive():
                m.proc.kill()
                m.proc.join(5)
        from bench.consult.run import login

        try:  # a fresh token: the soak may outlive the 15-minute access token
            fresh = login(gateway, ("doctor_a",))["doctor_a"]
        except httpx.HTTPError:
            fresh = tokens["doctor_a"]
        result["end_session_status"] = end_session(gateway, fresh, session_id)
    time.sleep(5)
    result["server_after_end"] = {"rss_mb": round(rss_mb(server_pid), 1), "threads": threads(server_pid)}
    log(f"after the session ended: RSS {result['server_after_end']['rss_mb']} MB, "
        f"{result['server_after_end']['threads']} threads")
    return result


def _sample(members: dict[str, Member], server_pid: int, gateway_pid: int, diag_url: str | None = None
            ) -> dict[str, Any]:
    diag = None
    if diag_url:
        try:
            diag = httpx.get(diag_url, timeout=30).json()
        except (httpx.HTTPError, ValueError) as exc:
            diag = {"error": str(exc)}
    return {"diag": diag, "t": time.monotonic(), "load": os.getloadavg()[0], "server_cpu": cpu_seconds(server_pid),
            "gateway_cpu": cpu_seconds(gateway_pid),
            "rss_mb": rss_mb(server_pid), "threads": threads(server_pid),
            "loop_sched": schedstat(server_pid),
            "clients_sched": {n: schedstat(m.proc.pid) for n, m in members.items() if m.proc.is_alive()},
            "sent": {n: m.snapshots[-1]["sent"] for n, m in members.items() if m.snapshots},
            "clients_cpu": {n: cpu_seconds(m.proc.pid) for n, m in members.items() if m.proc.is_alive()}}


def _fps(members: dict[str, Member], names: dict[str | None, str], t0: float, t1: float, kind: str
         ) -> dict[str, float]:
    """Frames per second each receiver got from each sender between the snapshots nearest t0 and t1."""
    out = {}
    for m in members.values():
        a, b = m.frames_at(t0, kind), m.frames_at(t1, kind)
        if not a or not b or b[0] <= a[0]:
            continue
        for pid, frames in b[1].items():
            out[f"{m.name} ← {names.get(pid, pid)}"] = round((frames - a[1].get(pid, 0)) / (b[0] - a[0]), 2)
    return out


def _interval(members: dict[str, Member], names: dict[str | None, str], a: dict[str, Any], b: dict[str, Any]
              ) -> dict[str, Any]:
    dt = b["t"] - a["t"]
    video = _fps(members, names, a["t"], b["t"], "video")
    audio = _fps(members, names, a["t"], b["t"], "audio")
    sizes = {f"{m.name} ← {names.get(pid, pid)}": wh for m in members.values() if m.snapshots
             for pid, wh in m.snapshots[-1]["size"].items()}
    vs = sorted(video.values())
    return {"seconds": round(dt, 1),
            "server_cores": round((b["server_cpu"] - a["server_cpu"]) / dt, 3),
            "gateway_cores": round((b["gateway_cpu"] - a["gateway_cpu"]) / dt, 3),
            "client_cores": {n: round((b["clients_cpu"][n] - a["clients_cpu"][n]) / dt, 3) for n in b["clients_cpu"]
                             if n in a["clients_cpu"]},
            "server_threads": b["threads"], "server_rss_mb": round(b["rss_mb"], 1),
            # share of the window the server's event-loop thread (and each client's main thread) was runnable
            # but waiting for a CPU: the machine's other work taking the cores
            "server_loop_runqueue_wait_share": round((b["loop_sched"][1] - a["loop_sched"][1]) / dt, 3),
            "server_loop_on_cpu_share": round((b["loop_sched"][0] - a["loop_sched"][0]) / dt, 3),
            "client_main_runqueue_wait_share": {n: round((b["clients_sched"][n][1] - a["clients_sched"][n][1]) / dt, 3)
                                                for n in b["clients_sched"] if n in a["clients_sched"]},
            "sent_fps": {n: round((b["sent"][n] - a["sent"].get(n, 0)) / dt, 2) for n in b["sent"]},
            "video_fps": video, "audio_frames_per_s": audio, "received_size": sizes,
            "video_fps_min": vs[0] if vs else 0.0, "video_fps_median": vs[len(vs) // 2] if vs else 0.0}


def _first_frames(members: dict[str, Member], names: dict[str | None, str]) -> dict[str, Any]:
    opened = {m.participant_id: m.opened for m in members.values()}
    guests_open = [m.opened for m in members.values() if m.name != HOST and m.opened is not None]
    participants, pairs = [], []
    for m in members.values():
        assert m.opened is not None
        start = m.opened if m.name != HOST else min(guests_open)
        first = min(f["t"] for f in m.first.values())
        participants.append({"participant": m.name, "seconds": round(first - start, 3),
                             "measured_from": "own socket opening" if m.name != HOST
                             else "the first guest's socket opening (the host is alone before)",
                             "offer_answered_after_s": round((m.media or start) - m.opened, 3)})
        for pid, f in m.first.items():
            since = max(m.opened, opened.get(pid) or m.opened)
            pairs.append({"receiver": m.name, "sender": names.get(pid, pid), "seconds": round(f["t"] - since, 3),
                          "size": [f["width"], f["height"]]})
    return {"participants": participants, "pairs": pairs,
            "max_s": max(p["seconds"] for p in participants), "poll_resolution_ms": 10}


def _soak(members: dict[str, Member], names: dict[str | None, str], samples: list[dict[str, Any]], flowing: float,
          minutes: float, sample: float) -> dict[str, Any]:
    rows = []
    for a, b in itertools.pairwise(samples):
        if b["t"] - a["t"] < sample * 0.5:
            continue
        fps = _fps(members, names, a["t"], b["t"], "video")
        rows.append({"minute": round((b["t"] - flowing) / 60, 2), "rss_mb": round(b["rss_mb"], 1),
                     "threads": b["threads"],
                     "server_cores": round((b["server_cpu"] - a["server_cpu"]) / (b["t"] - a["t"]), 3),
                     "video_fps_min": min(fps.values()) if fps else None,
                     "server_loop_runqueue_wait_share": round((b["loop_sched"][1] - a["loop_sched"][1])
                                                              / (b["t"] - a["t"]), 3),
                     "load_1m": round(b["load"], 2), **({"diag": b["diag"]} if b.get("diag") else {})})
    first_minute = [r for r in rows if r["minute"] <= 1.0] or rows[:1]
    baseline = first_minute[-1]["rss_mb"] if first_minute else None
    end = rows[-1]["rss_mb"] if rows else None
    total = samples[-1]["t"] - samples[0]["t"] if len(samples) > 1 else 0
    fps_all = _fps(members, names, samples[0]["t"], samples[-1]["t"], "video") if len(samples) > 1 else {}
    return {"minutes": minutes, "sample_s": sample, "samples": rows,
            "rss_first_minute_mb": baseline, "rss_end_mb": end, "rss_max_mb": max((r["rss_mb"] for r in rows),
                                                                                  default=None),
            "rss_growth_pct": round((end - baseline) / baseline * 100, 2) if baseline and end else 0.0,
            "server_cores_mean": round((samples[-1]["server_cpu"] - samples[0]["server_cpu"]) / total, 3)
            if total else None,
            "client_cores_mean": {n: round((samples[-1]["clients_cpu"][n] - samples[0]["clients_cpu"][n]) / total, 3)
                                  for n in samples[-1]["clients_cpu"] if n in samples[0]["clients_cpu"]}
            if total else {},
            "video_fps_whole_soak": fps_all,
            "video_fps_min_whole_soak": min(fps_all.values()) if fps_all else None}
