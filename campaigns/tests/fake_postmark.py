"""A local stand-in for Postmark's HTTP API (the outside world of the anymail tests): it records
every request and answers `POST /email` as Postmark does, or as a test scripts it to."""

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakePostmark(ThreadingHTTPServer):
    """Records every request (`requests`: path, headers, body, payload, and the payload's `To`
    and Message-ID header). Answers a MessageID per accepted email, 422 with ErrorCode 300 for
    an address in `invalid`, a 500 for one in `broken`. `answers` scripts the next requests'
    answers, each a status or (status, headers); `always` answers every other request with one
    status (an endless throttle); `cookie` is a Set-Cookie sent with every answer (a load
    balancer's, say). `on_accept(to, esp_message_id, message_id)` runs when an email is
    accepted, before the answer goes back: an ESP whose webhook beats its API's answer."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _PostmarkHandler)
        self.requests: list[dict] = []
        self.invalid: set[str] = set()
        self.broken: set[str] = set()
        self.answers: list = []
        self.always: int | None = None
        self.message_ids: dict[str, str] = {}
        self.cookie = ""
        self.on_accept = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    @property
    def recipients(self) -> list[str]:
        return [request["To"] for request in self.requests]

    def start(self) -> None:
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _PostmarkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Postmark

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        payload = json.loads(body)
        server = self.server
        to = payload["To"]
        message_headers = {h["Name"]: h["Value"] for h in payload.get("Headers", [])}
        server.requests.append(
            {
                "path": self.path,
                "headers": dict(self.headers),
                "body": body,
                "payload": payload,
                "To": to,
                "Message-ID": message_headers.get("Message-ID"),
            }
        )
        extra = {}
        if server.answers or server.always:
            answer = server.answers.pop(0) if server.answers else server.always
            status, extra = answer if isinstance(answer, tuple) else (answer, {})
        elif to in server.invalid:
            status = 422
        elif to in server.broken:
            status = 500
        else:
            status = 200
        if status == 200:
            server.message_ids[to] = str(uuid.uuid4())
            if server.on_accept is not None:
                server.on_accept(to, server.message_ids[to], message_headers.get("Message-ID"))
            answer = {
                "To": to,
                "SubmittedAt": "2026-11-26T12:00:00.0000000Z",
                "MessageID": server.message_ids[to],
                "ErrorCode": 0,
                "Message": "OK",
            }
        elif status == 422:
            answer = {"ErrorCode": 300, "Message": f"Invalid 'To' address: '{to}'."}
        elif status == 429:
            answer = {"ErrorCode": 0, "Message": "Rate limit exceeded, retry later."}
        else:
            answer = {"ErrorCode": status, "Message": "Internal server error"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if server.cookie:
            self.send_header("Set-Cookie", server.cookie)
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass
