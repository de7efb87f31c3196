"""The Markdown page of a run (bench/results/consult.md) from its JSON."""

from __future__ import annotations

from typing import Any

PEERS = ("Peer named in the issue: Jitsi (Jitsi Videobridge) / LiveKit. Neither is packaged in Debian or on PyPI "
         "in a form that runs here side by side (both need their own server builds: a JVM videobridge with its "
         "signalling stack, or LiveKit's Go server binary); they were not fetched or built, so there is no "
         "side-by-side run and no ratio: our absolute figures are reported against the targets.")


def _f(v: Any, digits: int = 2) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def _met(ok: bool | None) -> str:
    return "–" if ok is None else ("yes" if ok else "**no**")


def targets(result: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    room = result.get("room") or {}
    s, soak, j = room.get("steady") or {}, room.get("soak") or {}, room.get("join_to_first_frame") or {}
    rows: list[tuple[str, str, str, bool | None]] = []
    if s:
        rows.append((f"consult service CPU, 3-party room (cores, steady window, at the {s['video_fps_median']:.1f} "
                     "fps it delivered)", _f(s["server_cores"]), "<= 1 core", s["server_cores"] <= 1.0))
        rows += [(r[0], r[1], r[2], r[3]) for r in result.get("extra_target_rows", [])]
        rows.append(("video received, worst pair (fps, steady window)", _f(s["video_fps_min"], 1), ">= 24 fps",
                     s["video_fps_min"] >= 24))
    if j:
        rows.append(("join-to-first-frame, worst participant (s)", _f(j["max_s"]), "<= 2 s", j["max_s"] <= 2.0))
    if soak:
        rows.append((f"RSS growth over the {soak['minutes']:g}-minute soak, first minute → end (%)",
                     f"{soak['rss_growth_pct']:+.1f}", "<= +10 %", soak["rss_growth_pct"] <= 10.0))
    api = result.get("api")
    if api:
        rows.append((f"consult API, {api['users']} users: errors (non-2xx)", str(api["non_2xx"]), "0",
                     api["non_2xx"] == 0))
    return rows


def render(result: dict[str, Any]) -> str:
    m, v = result["machine"], result.get("versions", {})
    lb, la = m["load_average_before"], m["load_average_after"]
    out = [
        "# Consult benchmark: a 3-party video room and the consult API",
        "",
        f"Run {result['started']} → {result['finished']} (`{result['command'].strip()}`; `make bench-consult` runs "
        "the same with a 2-minute soak).",
        f"Machine: {m['cpu']}, {m['cores']} cores shared by the consult service, the gateway, PostgreSQL, Redis, "
        f"the three participant processes and the load client (anything else running shows in the load "
        f"average); Python {m['python']}, Linux {m['kernel']}.",
        f"Load average (1/5/15 min) before: {lb[0]} / {lb[1]} / {lb[2]}; after: {la[0]} / {la[1]} / {la[2]}. "
        "On 2 cores that means more runnable threads than cores: real-time media suffers first (the event "
        "loop's wait for a CPU is shown below). Compare rows of this run, not runs of different days.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        PEERS,
        "",
        "## Against the targets",
        "",
        "| metric | ours | target | met |",
        "|---|---:|---|---|",
    ]
    out += [f"| {a} | {b} | {c} | {_met(d)} |" for a, b, c, d in targets(result)]
    room = result.get("room")
    if room:
        out += _room(room)
    if result.get("other_runs"):
        out += _comparison(result)
    if result.get("api"):
        out += _api(result["api"])
    if result.get("notes"):
        out += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(out) + "\n"


def _room(room: dict[str, Any]) -> list[str]:
    s, j, soak = room["steady"], room["join_to_first_frame"], room.get("soak") or {}
    vid = room["video"]
    out = [
        "",
        "## Video room",
        "",
        f"Three aiortc participants (services/consult/rooms/client.py: {vid['width']}x{vid['height']} moving "
        f"gradient at {vid['fps']} fps, VP8, plus a 440 Hz Opus tone), each in its own process, join one consult "
        "session through the gateway's signaling WebSocket: specialist (孙主任, consultant, host) first, then "
        "doctor_a (requester) and tech_a (invitee), who wait until the host's process admits them. Each offers "
        "one sendrecv audio+video pair and 3 recvonly pairs (a room of four); ICE on 127.0.0.1 only, no ICE "
        "servers. The consult service is one uvicorn process; its CPU is read from /proc/<pid>/stat (all threads).",
        "",
        f"Idle consult service before the room: {room['server_idle']['cores']} cores, RSS "
        f"{room['server_idle']['rss_mb']} MB.",
        "",
        f"### Steady window ({s['seconds']:g} s, after every stream flowed + warm-up)",
        "",
        "| process | CPU (cores) |",
        "|---|---:|",
        f"| consult service (the room's media server) | {_f(s['server_cores'], 3)} |",
        f"| gateway (signaling socket only) | {_f(s['gateway_cores'], 3)} |",
    ]
    out += [f"| participant {n} (its own encode 1 + decode 2, in its own process) | {_f(c, 3)} |"
            for n, c in s["client_cores"].items()]
    out += [
        "",
        f"Consult service: {s['server_threads']} threads, RSS {s['server_rss_mb']} MB. Its event-loop thread was on a "
        f"CPU {s.get('server_loop_on_cpu_share', 0):.0%} of the window and **runnable but waiting for a CPU "
        f"{s.get('server_loop_runqueue_wait_share', 0):.0%}** of it (/proc/<pid>/task/<tid>/schedstat); the "
        "participants' main threads waited " + ", ".join(f"{n} {w:.0%}" for n, w in
                                                         s.get("client_main_runqueue_wait_share", {}).items()) + ".",
        "",
        "Frames per second received (receiver ← sender), video and audio (20 ms Opus frames: 50/s when all arrive); "
        "frames the senders' cameras produced: " + ", ".join(f"{n} {f:.1f}/s" for n, f in s.get("sent_fps", {}).items())
        + ".",
        "",
        "| receiver ← sender | video fps | audio frames/s | size |",
        "|---|---:|---:|---|",
    ]
    for pair, fps in s["video_fps"].items():
        size = s["received_size"].get(pair)
        out.append(f"| {pair} | {fps:.1f} | {s['audio_frames_per_s'].get(pair, 0):.1f} | "
                   f"{'x'.join(map(str, size)) if size else 'n/a'} |")
    out += [
        "",
        "### Join-to-first-frame",
        "",
        "Socket opening (the WebSocket to the gateway) → the first decoded video frame from another participant, "
        f"polled every {j['poll_resolution_ms']} ms. The guests' figure includes the waiting room (the host's "
        "process admits them), the offer/answer, ICE and DTLS on loopback and the first keyframe.",
        "",
        "| participant | seconds | measured from | offer answered after (s) |",
        "|---|---:|---|---:|",
    ]
    out += [f"| {p['participant']} | {p['seconds']:.2f} | {p['measured_from']} | {p['offer_answered_after_s']:.2f} |"
            for p in j["participants"]]
    out += ["", "Per pair (from the later of the two sockets' openings): " + ", ".join(
        f"{p['receiver']} ← {p['sender']} {p['seconds']:.2f} s" for p in j["pairs"]) + "."]
    if soak:
        out += [
            "",
            f"### Soak ({soak['minutes']:g} min, sampled every {soak['sample_s']:g} s)",
            "",
            f"RSS of the consult service: {soak['rss_first_minute_mb']} MB at the end of the first minute → "
            f"{soak['rss_end_mb']} MB at the end ({soak['rss_growth_pct']:+.1f} %), highest {soak['rss_max_mb']} MB. "
            f"Mean CPU over the soak: consult service {soak['server_cores_mean']} cores; participants "
            + ", ".join(f"{n} {c}" for n, c in soak["client_cores_mean"].items()) +
            f". Video fps over the whole soak, worst pair: {soak['video_fps_min_whole_soak']}.",
            f"After the session ended (5 s later): RSS {room['server_after_end']['rss_mb']} MB, "
            f"{room['server_after_end']['threads']} threads (end-session answer "
            f"{room.get('end_session_status')}"
            + (": the 15-minute token had expired, so everyone had left the room but the session was not "
               "ended — fixed since: a fresh token ends it" if room.get("end_session_status") == 401 else "") + ").",
            "",
            "| minute | RSS MB | threads | server cores | worst video fps | loop waiting for CPU | load 1m |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        rows = soak["samples"]
        step = max(1, len(rows) // 40)
        for r in rows[::step] + ([rows[-1]] if rows and (len(rows) - 1) % step else []):
            out.append(f"| {r['minute']:.1f} | {r['rss_mb']} | {r['threads']} | {r['server_cores']:.2f} | "
                       f"{_f(r['video_fps_min'], 1)} | {r.get('server_loop_runqueue_wait_share', 0):.0%} | "
                       f"{_f(r.get('load_1m'))} |")
    prof = s.get("profile")
    if prof:
        out += _profile(prof, room.get("codec_cost"))
    return out


def _profile(prof: dict[str, Any], cost: dict[str, Any] | None) -> list[str]:
    out = ["", "### Where the server's CPU goes (perf, during the steady window)", "",
           f"`perf record -F 199 -p <consult pid>` for {prof['seconds']:g} s ({prof.get('samples', 0)} samples), "
           "summed by library; cores = share × the process's CPU in that time "
           f"({prof['server_cores']} cores). PyAV's bundled libvpx is stripped, so encode and decode are split "
           "below with measured per-frame costs, not by symbol.", "",
           "| library | share | cores |", "|---|---:|---:|"]
    for k, share in prof.get("share_by_library", {}).items():
        if share >= 0.003:
            out.append(f"| {k} | {share:.1%} | {prof['cores_by_library'][k]:.3f} |")
    if prof.get("threads"):
        out += ["", "By thread (the event loop is the main thread; aiortc decodes each received track in a thread "
                "of its own and encodes in the default thread pool):", "",
                "| thread | cores | top libraries |", "|---|---:|---|"]
        out += [f"| {t['thread']} | {t['cores']:.3f} | {t['top']} |" for t in prof["threads"]]
    if cost:
        mdl = cost["model_3_party_cores_at_fps"]
        out += ["", f"Codec cost per frame, one thread, aiortc's own codecs on this video (CPU time): VP8 encode "
                f"{cost['vp8_encode_ms_per_frame']} ms, VP8 decode {cost['vp8_decode_ms_per_frame']} ms "
                f"({cost['bytes_per_frame']} bytes/frame at 500 kbps), Opus encode "
                f"{cost['opus_encode_ms_per_frame']} ms, decode {cost['opus_decode_ms_per_frame']} ms per 20 ms. "
                f"So at {mdl['fps']} fps a 3-party room costs the server, in codecs alone: "
                + "; ".join(f"{k} {val} cores" for k, val in mdl.items() if k != "fps") + "."]
    return out


def _row(label: str, run: dict[str, Any]) -> str:
    room, st = run["room"], run["settings"]
    s, j = room["steady"], room["join_to_first_frame"]
    prof = s.get("profile") or {}
    lib = prof.get("cores_by_library", {})
    vpx = lib.get("libvpx (VP8 encode + decode)")
    py = lib.get("Python interpreter (aiortc, asyncio)")
    if "encode_once" in st.get("consult_app", ""):  # runs of the former prototype (bench/consult/encode_once.py)
        app = "encode once per source (prototype)"
    else:  # runs before the setting existed re-encoded per slot
        app = "encode once per source" if st.get("encode_once") == "on" else "per-slot encode"
    load = run["machine"]["load_average_before"][0]
    return (f"| {label} | {app} | {st.get('nice', 0)} | {load} | {s['server_cores']:.2f} | {_f(vpx)} | {_f(py)} | "
            f"{s.get('server_loop_runqueue_wait_share', 0):.0%} | "
            f"{s['video_fps_min']:.1f} / {s['video_fps_median']:.1f} | "
            f"{sum(s.get('sent_fps', {}).values()) / max(1, len(s.get('sent_fps', {}))):.1f} | "
            f"{(sum(s['audio_frames_per_s'].values()) / max(1, len(s['audio_frames_per_s']))):.1f} | "
            f"{j['max_s']:.2f} | {sum(s['client_cores'].values()) / max(1, len(s['client_cores'])):.2f} |")


def _comparison(result: dict[str, Any]) -> list[str]:
    out = ["", "## Why: the same room with and without CPU contention, and with encode-once", "",
           "Short room runs (steady window as above) after the run of record, back to back. `nice` -10 was meant "
           "to put the consult service, the gateway and the participant processes ahead of the machine's other "
           "work; it did not free the machine (the server's loop still waited for a CPU, see the notes), so these "
           "rows are as contended as the run of record: compare them by CPU per delivered frame. "
           "\"encode once\" is CONSULT_ENCODE_ONCE (one VP8 encoder per source, docs/consult.md Fan-out); rows "
           "marked prototype were measured with an earlier monkeypatch of the same idea.", "",
           "| run | server | nice | load 1m before | server cores | libvpx cores | Python cores | server loop waiting "
           "for CPU | video fps min / median | camera fps sent | audio frames/s | join-to-first-frame max s | "
           "client cores each |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    if result.get("room"):
        out.append(_row("run of record", result))
    out += [_row(label, run) for label, run in result["other_runs"].items()]
    return out


def _api(api: dict[str, Any]) -> list[str]:
    out = [
        "",
        "## Consult API under load",
        "",
        f"{api['users']} concurrent users (asyncio + aiohttp, closed loop, no think time) with tokens of "
        f"{', '.join(api['accounts'])} (the users take the accounts in turn) through the gateway for "
        f"{api['seconds']:g} s after a {api['warmup_s']:g}-s warm-up. Requesters: outgoing box 25 %, incoming "
        "box 5 %, detail 25 %, new draft 10 %, chat message 15 %, chat history 5 %, opinion 15 %; specialists: "
        "incoming box 30 %, detail 25 %, chat message 15 %, chat history 10 %, opinion 20 % — on consults "
        "prepared through the API (submitted with e-consent, accepted, opinion drafted). One uvicorn process each "
        "for the gateway and the consult service.",
        "",
        f"**{api['requests_per_s']} requests/s**, p50 {api['p50_ms']} ms, p90 {api['p90_ms']} ms, p99 "
        f"{api['p99_ms']} ms; {api['requests']} requests, non-2xx: {api['non_2xx']}"
        + (f" (e.g. {'; '.join(api['error_examples'][:5])})" if api["error_examples"] else "") + ". "
        f"CPU during the load: consult service {api['server_cores'].get('consult')} cores, gateway "
        f"{api['server_cores'].get('gateway')} cores.",
        "",
        "| operation | n | p50 ms | p99 ms | statuses |",
        "|---|---:|---:|---:|---|",
    ]
    out += [f"| {op} | {r['n']} | {r['p50_ms']} | {r['p99_ms']} | {r['statuses']} |"
            for op, r in api["by_operation"].items()]
    if api.get("data_notes"):
        out += ["", "Data that could not be prepared: " + "; ".join(api["data_notes"])]
    return out
