"""Loopback stand-ins for what the benchmark Job talks to besides the model server:
the GKE metadata server (a Workload Identity token), Managed Service for
Prometheus' query API (answers from tests/clients/fixtures/dcgm/) and
trtllm-serve's /metrics iteration stats. One threaded HTTP server, on a free
port of 127.0.0.1, recording what it was asked."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

DCGM_FIXTURES = Path(__file__).parent / "clients" / "fixtures" / "dcgm"
TOKEN = "ya29.test-workload-identity-token"


class Platform(http.server.BaseHTTPRequestHandler):
    queries: ClassVar[list[dict[str, str]]] = []
    token_requests: ClassVar[int] = 0
    health: ClassVar[list[int]] = []  # statuses of /health, the last one repeats
    iteration_stats: ClassVar[list[dict]] = []

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/computeMetadata/v1/instance/service-accounts/default/token":
            if self.headers.get("Metadata-Flavor") != "Google":
                return self._send(403, {"error": "Missing Metadata-Flavor:Google header"})
            Platform.token_requests += 1
            return self._send(
                200, {"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}
            )
        if url.path == "/api/v1/query_range":
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"status": "error", "error": "unauthenticated"})
            query = dict(urllib.parse.parse_qsl(url.query))
            Platform.queries.append(query)
            fixture = DCGM_FIXTURES / f"{query['query'].split('{')[0]}.json"
            if not fixture.is_file():
                return self._send(
                    200, {"status": "success", "data": {"resultType": "matrix", "result": []}}
                )
            return self._send(200, json.loads(fixture.read_text()))
        if url.path == "/metrics":
            stats, Platform.iteration_stats = Platform.iteration_stats, []
            return self._send(200, stats)
        if url.path == "/health":
            status = (
                Platform.health.pop(0)
                if len(Platform.health) > 1
                else (Platform.health or [200])[0]
            )
            return self._send(status, {})
        return self._send(404, {"detail": "Not Found"})

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def platform(port: int = 0) -> Iterator[str]:
    """The base URL of a fresh fake platform."""
    Platform.queries, Platform.token_requests, Platform.health = [], 0, []
    Platform.iteration_stats = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Platform)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
