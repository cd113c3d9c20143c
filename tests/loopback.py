"""Loopback HTTP stand-ins for the tests: a quiet handler that answers JSON, and
a server run in a thread for the length of a `with` block."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# serve_forever checks for shutdown this often; its default, 0.5 s, made every
# stand-in's shutdown wait up to half a second.
POLL_SECONDS = 0.05


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """No request log on stderr; `reply` sends a JSON body with its length."""

    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serving(
    handler: type[http.server.BaseHTTPRequestHandler], port: int = 0, **state: Any
) -> Iterator[http.server.ThreadingHTTPServer]:
    """A server on loopback (`port` 0: a free one); `state` becomes attributes
    of the server, where handlers read it as `self.server.<name>`."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    httpd.daemon_threads = True
    for name, value in state.items():
        setattr(httpd, name, value)
    threading.Thread(target=httpd.serve_forever, args=(POLL_SECONDS,), daemon=True).start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def base_url(httpd: http.server.HTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"
