"""Loopback stand-ins for what the benchmark Job talks to besides the model server:
the GKE metadata server (a Workload Identity token), Managed Service for
Prometheus' query API (answers from tests/clients/fixtures/dcgm/) and
trtllm-serve's /metrics iteration stats. One threaded HTTP server, on a free
port of 127.0.0.1, recording what it was asked."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from tests.loopback import JsonHandler, base_url, serving

DCGM_FIXTURES = Path(__file__).parent / "clients" / "fixtures" / "dcgm"
TOKEN = "ya29.test-workload-identity-token"


class Platform(JsonHandler):
    queries: ClassVar[list[dict[str, str]]] = []
    token_requests: ClassVar[int] = 0
    health: ClassVar[list[int]] = []  # statuses of /health, the last one repeats
    iteration_stats: ClassVar[list[dict]] = []

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/computeMetadata/v1/instance/service-accounts/default/token":
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.reply(403, {"error": "Missing Metadata-Flavor:Google header"})
            Platform.token_requests += 1
            return self.reply(
                200, {"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}
            )
        if url.path == "/api/v1/query_range":
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self.reply(401, {"status": "error", "error": "unauthenticated"})
            query = dict(urllib.parse.parse_qsl(url.query))
            Platform.queries.append(query)
            fixture = DCGM_FIXTURES / f"{query['query'].split('{')[0]}.json"
            if not fixture.is_file():
                return self.reply(
                    200, {"status": "success", "data": {"resultType": "matrix", "result": []}}
                )
            return self.reply(200, json.loads(fixture.read_text()))
        if url.path == "/metrics":
            stats, Platform.iteration_stats = Platform.iteration_stats, []
            return self.reply(200, stats)
        if url.path == "/health":
            status = (
                Platform.health.pop(0)
                if len(Platform.health) > 1
                else (Platform.health or [200])[0]
            )
            return self.reply(status, {})
        return self.reply(404, {"detail": "Not Found"})


@contextmanager
def platform(port: int = 0) -> Iterator[str]:
    """The base URL of a fresh fake platform."""
    Platform.queries, Platform.token_requests, Platform.health = [], 0, []
    Platform.iteration_stats = []
    with serving(Platform, port) as httpd:
        yield base_url(httpd)
