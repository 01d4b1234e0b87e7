"""The tracking endpoints' ASGI front, in front of Django (crm/asgi.py): what the tracking
process serves, gunicorn with uvicorn's worker (uvicorn_worker.UvicornWorker: an HTTP parser
and event loop in C, where gunicorn's own workers parse in Python; per tracking request its
workers took ~0.28 ms of CPU where the web process's gthread workers took ~0.4 ms, answers
included: docs/performance.md).

The decisions and answers are `campaigns.tracking_front`'s; this turns the ASGI scope into a
`TrackingRequest` and the answer into ASGI messages, and hands everything the front does not
answer to Django's ASGI application unchanged (with the body it read, replayed).

Off the event loop, in a small pool of threads per worker (TRACKING_THREADS): every answer.
The click's SELECT and the one-click unsubscribe's write because Django's database connections
are synchronous (and refuse to run on an event loop), and the pixel too: its RPUSH is
synchronous as well, and on the loop it stalled all of the worker's connections whenever Redis
paused (p99 37-53 ms with the pixel on the loop, 24-32 ms in the pool, for ~4 % fewer requests
a second; redis.asyncio costs more CPU per push than redis-py: docs/performance.md). The loop
parses, routes, reads the one-click body and sends. Each thread keeps its own database
connection once it has answered a click, an unsubscribe or, while Redis is down, a pixel (whose
open is then written in the request), checked and recycled around every request as Django's
request signals would (close_old_connections, in TrackingFront), so a worker holds at most
TRACKING_THREADS connections.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace

from django.conf import settings

from campaigns.tracking_front import (
    PREFIX,
    TrackingAnswer,
    TrackingFront,
    TrackingRequest,
    is_secure,
    proxy_ssl_header,
)

_WANTED = {
    b"user-agent": "user_agent",
    b"cookie": "cookie",
    b"content-type": "content_type",
    b"content-length": "content_length",
}


class TrackingASGIApplication:
    """ASGI: the three tracking answers here, everything else to `django_application`."""

    def __init__(self, django_application, *, executor: Executor | None = None):
        self.django = django_application
        self.front = TrackingFront()
        self.executor = executor or ThreadPoolExecutor(
            max_workers=settings.TRACKING_THREADS, thread_name_prefix="tracking"
        )
        # request.META's name of the proxy's HTTPS header, as a header name: b"x-forwarded-proto"
        meta_name = proxy_ssl_header()
        self.proxy_header = (
            meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
            if meta_name
            else None
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.django(scope, receive, send)
        path = scope["path"]
        root_path = settings.FORCE_SCRIPT_NAME or scope.get("root_path", "")
        if root_path:  # as Django's ASGIRequest takes path_info
            path = path.removeprefix(root_path)
        if not path.startswith(PREFIX):
            return await self.django(scope, receive, send)
        request = self._request(scope, path)
        route = self.front.route(request)
        if route is None:
            return await self.django(scope, receive, send)
        if route.body_length:
            messages, body = await _read_body(receive)
            if messages is None:
                return None  # the client went away
            receive = _replaying(messages, receive)  # for Django, if it answers after all
            if len(body) != route.body_length:
                return await self.django(scope, receive, send)
            request = replace(request, body=body)
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self.executor, self.front.answer, route, request)
        if answer is None:
            return await self.django(scope, receive, send)
        await _send(answer, send)
        return None

    def _request(self, scope, path: str) -> TrackingRequest:
        fields = {}
        proxy_value = None
        for name, value in scope.get("headers", ()):
            if name in _WANTED:
                field = _WANTED[name]
                text = value.decode("latin-1")
                # Repeated headers are joined with commas, as Django's ASGIRequest does.
                fields[field] = f"{fields[field]},{text}" if field in fields else text
            elif name == self.proxy_header:
                text = value.decode("latin-1")
                proxy_value = text if proxy_value is None else f"{proxy_value},{text}"
        query = scope.get("query_string", b"")
        client = scope.get("client")
        return TrackingRequest(
            method=scope["method"].upper(),
            path=path,
            query_string=query.decode() if isinstance(query, bytes) else query,
            is_secure=is_secure(
                proxy_header_value=proxy_value, scheme=scope.get("scheme") or "http"
            ),
            remote_addr=client[0] if client else "",
            **fields,
        )


async def _read_body(receive) -> tuple[list | None, bytes]:
    """The request's body messages and their bytes; None for the messages when the client
    disconnected first."""
    messages = []
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, b""
        messages.append(message)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replaying(messages: list, receive):
    """A receive() that gives the messages already read first, then the connection's own."""
    pending = list(messages)

    async def replay():
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _send(answer: TrackingAnswer, send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [
                (name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})
