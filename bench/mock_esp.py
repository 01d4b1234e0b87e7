"""A local stand-in for an ESP's HTTP API (Postmark's `POST /email`), for the send benchmark.

    python -m bench.mock_esp PORT

HTTP/1.1 keep-alive on an asyncio Protocol (no stream reader/writer tasks: each request is
parsed and answered inside `data_received`). It answers each accepted email like Postmark does
(`To`, `SubmittedAt`, a fresh `MessageID`, `ErrorCode` 0, `Message` "OK"; the body is parsed as
JSON, so a malformed one gets Postmark's 422 / ErrorCode 402) and counts them; `GET /count`
returns the counts as JSON. It is deliberately cheap, like Postfix's smtp-sink for the SMTP half,
so that the benchmark measures our send path rather than the mock.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime

COUNTS = {"emails": 0, "bytes": 0, "connections": 0}


def _response(status: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode() + body


def answer(method: bytes, path: bytes, body: bytes) -> bytes:
    """The response to one request."""
    if method == b"GET" and path == b"/count":
        return _response("200 OK", json.dumps(COUNTS).encode())
    if method == b"POST" and path.rstrip(b"/") == b"/email":
        try:
            payload = json.loads(body)
        except ValueError:
            return _response(
                "422 Unprocessable Entity",
                b'{"ErrorCode": 402, "Message": "Received invalid JSON input."}',
            )
        COUNTS["emails"] += 1
        COUNTS["bytes"] += len(body)
        reply = {
            "To": payload.get("To", ""),
            "SubmittedAt": datetime.now(UTC).isoformat(),
            "MessageID": str(uuid.uuid4()),
            "ErrorCode": 0,
            "Message": "OK",
        }
        return _response("200 OK", json.dumps(reply).encode())
    return _response("404 Not Found", b'{"ErrorCode": 404}')


class HTTPProtocol(asyncio.Protocol):
    """One keep-alive connection: buffers bytes, answers every complete request in order."""

    def connection_made(self, transport: asyncio.Transport) -> None:
        COUNTS["connections"] += 1
        self.transport = transport
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = bytes(self.buffer[:end])
            request_line, _, header_block = head.partition(b"\r\n")
            length = 0
            for line in header_block.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                break  # the body is still coming
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, path = request_line.split(b" ")[:2]
            replies.append(answer(method, path, body))
        if replies:
            self.transport.write(b"".join(replies))


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HTTPProtocol, "127.0.0.1", port, backlog=512)
    print(f"mock ESP listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
