"""A local stand-in for an ESP's HTTP API (Postmark's `POST /email`), for the send benchmark.

    python -m bench.mock_esp PORT

asyncio, HTTP/1.1 keep-alive, answers each accepted email like Postmark does (ErrorCode 0, a
MessageID) and counts them; `GET /count` returns the counts as JSON. It is deliberately cheap
so that the benchmark measures our send path, not the mock.
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


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    COUNTS["connections"] += 1
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, _, header_block = head.partition(b"\r\n")
            length = 0
            for line in header_block.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            method, path = request_line.split(b" ")[:2]
            if method == b"GET" and path == b"/count":
                writer.write(_response("200 OK", json.dumps(COUNTS).encode()))
            elif method == b"POST" and path.rstrip(b"/") == b"/email":
                payload = json.loads(body)
                COUNTS["emails"] += 1
                COUNTS["bytes"] += length
                answer = {
                    "To": payload.get("To", ""),
                    "SubmittedAt": datetime.now(UTC).isoformat(),
                    "MessageID": str(uuid.uuid4()),
                    "ErrorCode": 0,
                    "Message": "OK",
                }
                writer.write(_response("200 OK", json.dumps(answer).encode()))
            else:
                writer.write(_response("404 Not Found", b'{"ErrorCode": 404}'))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    print(f"mock ESP listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
