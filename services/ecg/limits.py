"""Body limits under /api/ecg/recordings: uploads get ECG_MAX_UPLOAD_BYTES, everything else the platform's.

The platform middleware's limit is lifted for the recordings prefix (an ECG upload can be GBs); this layer,
installed inside it, puts the right limit back per route: a declared Content-Length over the limit is
refused at once, and a body that grows past it while streaming is cut off with 413.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import PayloadTooLarge, error_body

RECORDINGS_PREFIX = "/api/ecg/recordings"


class EcgBodyLimit:
    def __init__(self, app: ASGIApp, *, upload_limit: int, other_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.other_limit = other_limit

    def _limit(self, scope: Scope) -> int:
        is_upload = scope.get("method") == "POST" and scope["path"].rstrip("/") == RECORDINGS_PREFIX
        return self.upload_limit if is_upload else self.other_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(RECORDINGS_PREFIX):
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0
        overflow = replaced = False

        async def counting_receive() -> Message:
            nonlocal seen, overflow
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    overflow = True
                    raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            # FastAPI turns an error while reading a JSON body into 400: say what really happened.
            if overflow and message["type"] == "http.response.start" and message["status"] != 413:
                replaced = True
                await _too_large(send, limit)
                return
            if replaced:  # the body of the answer we replaced
                return
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


async def _too_large(send: Send, limit: int) -> None:
    response = JSONResponse(error_body("payload_too_large", f"the request body is larger than {limit} bytes"),
                            status_code=413)
    await response({"type": "http"}, _disconnected, send)


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}
