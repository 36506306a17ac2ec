"""The GitHub fake's HTTP front: a threading HTTP/1.1 server on 127.0.0.1 with keep-alive.

`disable_nagle_algorithm` matters: without it every keep-alive response waits for the peer's delayed
ACK (about 40 ms) and skews every timing the tests and benchmarks take.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from devstack.github_api import ApiReply, ApiRequest

if TYPE_CHECKING:
    from devstack.github_fake import GitHubFake

API_ROOT = "/api/v3"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    request_queue_size = 128
    fake: GitHubFake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        """The `Server` header GitHub sends."""
        return "GitHub.com"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake keeps its own request log."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        fake = self.server.fake
        if parts.path.startswith(API_ROOT + "/") or parts.path == API_ROOT:
            request = ApiRequest(
                method=self.command,
                path=parts.path[len(API_ROOT) :] or "/",
                query=dict(parse_qsl(parts.query)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            try:
                reply = fake.handle(request)
            except Exception as err:  # a bug in the fake must still answer
                reply = ApiReply(500, {"message": f"GitHub fake error: {type(err).__name__}"})
            payload = b"" if reply.body is None else json.dumps(reply.body).encode()
            headers = dict(reply.headers)
            if payload:
                headers["Content-Type"] = "application/json; charset=utf-8"
            self._send(reply.status, payload, headers)
            return
        status, payload, content_type = fake.handle_download(self.command, parts.path)
        self._send(status, payload, {"Content-Type": content_type})

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


def make_server(fake: GitHubFake, host: str, port: int) -> ThreadingHTTPServer:
    """A server answering for `fake` at host:port (port 0 picks a free one); not yet serving."""
    server = _Server((host, port), _Handler)
    server.fake = fake
    return server
