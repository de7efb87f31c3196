"""The consult API under 50 concurrent users through the gateway (aiohttp client, closed loop, no think time).

Data first (through the API, as the users themselves): for each requester (doctor_a, doctor_b of two township
centres) ``per_pair`` consults to the county hospital, with e-consent, submitted, accepted by ``specialist``,
who writes an opinion draft; the same from doctor_a to the city hospital for ``specialist_city``.

Then ``users`` asyncio clients, the demo accounts taken in turn, each with its own token, repeat a weighted mix
of what the pages do, for ``duration`` seconds after a ``warmup``:

- requesters: outgoing box, incoming box, consult detail, a new draft, a chat message, the chat history,
  the opinion;
- specialists: incoming box, consult detail, a chat message, the chat history, the opinion.

Every answer is expected to be 2xx (nothing in the mix should fail); anything else is counted as an error.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from typing import Any

import aiohttp

REQUESTER_MIX = {"list outgoing": 25, "list incoming": 5, "detail": 25, "create draft": 10, "post chat message": 15,
                 "list chat messages": 5, "get opinion": 15}
SPECIALIST_MIX = {"list incoming": 30, "detail": 25, "post chat message": 15, "list chat messages": 10,
                  "get opinion": 20}
ROLES = {"doctor_a": "requester", "doctor_b": "requester", "specialist": "specialist",
         "specialist_city": "specialist"}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _draft(target: str) -> dict[str, Any]:
    return {"target_facility_id": target, "specialty": "心内科", "urgency": "routine", "reason": "胸痛待查",
            "question": "是否需要转诊？", "clinical_summary": "男，58岁，胸痛2小时。", "patient_name": "基准患者",
            "patient_sex": "male", "patient_age": 58}


async def prepare(gateway: str, tokens: dict[str, str], per_pair: int) -> tuple[dict[str, list[str]], list[str]]:
    """Consults per account (the ones each may read and post to); notes about what could not be prepared."""
    from gateway.identity.seed import COUNTY_HOSPITAL, demo_facility

    api = f"{gateway}/api/consult"
    county = str(demo_facility(COUNTY_HOSPITAL).id)
    city = str(next(f.id for f in _facilities() if f.code == "QH-CITY1"))
    mine: dict[str, list[str]] = defaultdict(list)
    notes: list[str] = []

    async with aiohttp.ClientSession() as s:
        async def call(method: str, path: str, user: str, body: Any = None) -> tuple[int, Any]:
            async with s.request(method, f"{api}{path}", json=body,
                                 headers={"Authorization": f"Bearer {tokens[user]}"}) as r:
                return r.status, (await r.json() if r.content_type == "application/json" else None)

        async def one(requester: str, target: str, consultant: str) -> str | None:
            st, c = await call("POST", "/consults", requester, _draft(target))
            if st != 201:
                return f"draft {requester}→{consultant}: {st} {str(c)[:200]}"
            cid = c["id"]
            steps = [("POST", f"/consults/{cid}/consent", requester,
                      {"method": "e_consent", "signer_name": "基准患者", "relation": "本人",
                       "statement_version": "2026-01"}),
                     ("POST", f"/consults/{cid}/submit", requester, None),
                     ("POST", f"/consults/{cid}/accept", consultant, {}),
                     ("PUT", f"/consults/{cid}/opinion", consultant,
                      {"findings": "心电图示ST段压低", "diagnosis": "不稳定型心绞痛", "recommendations": "建议转诊"})]
            for method, path, user, body in steps:
                st, out = await call(method, path, user, body)
                if st not in (200, 201):
                    return f"{path.rsplit('/', 1)[-1]} {requester}→{consultant}: {st} {str(out)[:200]}"
            mine[requester].append(cid)
            mine[consultant].append(cid)
            return None

        for requester, target, consultant in (("doctor_a", county, "specialist"), ("doctor_b", county, "specialist"),
                                              ("doctor_a", city, "specialist_city")):
            for _ in range(per_pair):
                problem = await one(requester, target, consultant)
                if problem:
                    notes.append(problem)
                    break
    return dict(mine), notes


def _facilities() -> list[Any]:
    from gateway.identity.seed import DEMO_FACILITIES

    return list(DEMO_FACILITIES)


async def load(gateway: str, tokens: dict[str, str], consults: dict[str, list[str]], *, users: int, duration: float,
               warmup: float, seed: int) -> dict[str, Any]:
    from gateway.identity.seed import COUNTY_HOSPITAL, demo_facility

    api = f"{gateway}/api/consult"
    county = str(demo_facility(COUNTY_HOSPITAL).id)
    accounts = [a for a in ROLES if consults.get(a)]
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    errors: list[str] = []
    measuring = {"on": False}
    stop_at = time.monotonic() + warmup + duration

    def request(op: str, user: str, rng: random.Random) -> tuple[str, str, Any]:
        cid = rng.choice(consults[user])
        if op == "list outgoing":
            return "GET", f"{api}/consults?box=outgoing", None
        if op == "list incoming":
            return "GET", f"{api}/consults?box=incoming", None
        if op == "detail":
            return "GET", f"{api}/consults/{cid}", None
        if op == "create draft":
            return "POST", f"{api}/consults", _draft(county)
        if op == "post chat message":
            return "POST", f"{api}/consults/{cid}/messages", {"text": f"基准消息 {rng.randrange(10**6)}"}
        if op == "list chat messages":
            return "GET", f"{api}/consults/{cid}/messages?limit=50", None
        if op == "get opinion":
            return "GET", f"{api}/consults/{cid}/opinion", None
        raise ValueError(op)

    async def user_loop(i: int, session: aiohttp.ClientSession) -> None:
        user = accounts[i % len(accounts)]
        mix = REQUESTER_MIX if ROLES[user] == "requester" else SPECIALIST_MIX
        ops, weights = list(mix), list(mix.values())
        rng = random.Random(seed + i)
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        while time.monotonic() < stop_at:
            op = rng.choices(ops, weights)[0]
            method, url, body = request(op, user, rng)
            t0 = time.perf_counter()
            try:
                async with session.request(method, url, json=body, headers=headers) as r:
                    await r.read()
                    status = str(r.status)
            except (TimeoutError, aiohttp.ClientError) as exc:
                status = type(exc).__name__
            ms = (time.perf_counter() - t0) * 1000
            if measuring["on"]:
                latencies[op].append(ms)
                statuses[op][status] += 1
                if not status.startswith("2") and len(errors) < 20:
                    errors.append(f"{op} as {user}: {status}")

    connector = aiohttp.TCPConnector(limit=users + 10)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        tasks = [asyncio.create_task(user_loop(i, session)) for i in range(users)]
        await asyncio.sleep(warmup)
        measuring["on"] = True
        t0 = time.monotonic()
        await asyncio.gather(*tasks)
        measured = time.monotonic() - t0
    everything = [x for v in latencies.values() for x in v]
    non_2xx = sum(n for st in statuses.values() for code, n in st.items() if not code.startswith("2"))
    per_op = {op: {"n": len(v), "p50_ms": round(_pct(v, 0.5) or 0, 1), "p99_ms": round(_pct(v, 0.99) or 0, 1),
                   "statuses": dict(statuses[op])} for op, v in sorted(latencies.items())}
    return {"users": users, "accounts": accounts, "seconds": round(measured, 1), "warmup_s": warmup,
            "requests": len(everything), "requests_per_s": round(len(everything) / measured, 1),
            "p50_ms": round(_pct(everything, 0.5) or 0, 1), "p90_ms": round(_pct(everything, 0.9) or 0, 1),
            "p99_ms": round(_pct(everything, 0.99) or 0, 1), "non_2xx": non_2xx, "error_examples": errors,
            "by_operation": per_op}
