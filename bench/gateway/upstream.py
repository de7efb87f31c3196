"""A do-nothing upstream for the benchmark: answers every request with a small JSON body, no database.

Measuring the gateway in front of it shows what the gateway itself costs, apart from the service's own
work (token check, audit row). ``uvicorn bench.gateway.upstream:app``.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"service":"imaging","status":"foundation","features":[]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
