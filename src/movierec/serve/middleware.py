"""Two pure ASGI guards around the app: a request body size limit (413) and a time limit per request.

Plain ASGI rather than ``BaseHTTPMiddleware``: they add microseconds, not a task per request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def send_json(send: Send, status: int, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413: at once from ``Content-Length``, or while the body streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> dict[str, Any]:
        return {"detail": f"The request body is larger than {self.max_bytes:,} bytes; send at most that much."}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await send_json(send, 413, self._message(), [(b"connection", b"close")])
                    return
                break
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._message()["detail"])
            return message

        await self.app(scope, limited, send)


class TimeLimit:
    """Answer 408 when the request body has not arrived within ``seconds``, 503 when the answer has not started
    by then (work already running in a thread finishes in the background; its result is dropped). Paths under
    ``exempt`` (admin reloads, bounded by the load itself) are not timed."""

    def __init__(self, app: ASGIApp, seconds: float, exempt: Sequence[str] = ()) -> None:
        self.app = app
        self.seconds = seconds
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        started = False
        body_done = scope.get("method") in {"GET", "HEAD", "OPTIONS", "DELETE"}

        async def tracked_receive() -> Message:
            nonlocal body_done
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, tracked_receive, tracked_send)
        except TimeoutError:
            if started:
                raise
            if not body_done:
                detail = f"The request body did not arrive within {self.seconds:g} s; send it faster or smaller."
                await send_json(send, 408, {"detail": detail}, [(b"connection", b"close")])
            else:
                detail = f"The answer took longer than {self.seconds:g} s; try again or ask for fewer movies."
                await send_json(send, 503, {"detail": detail})
