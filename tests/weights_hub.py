"""A stand-in Hugging Face Hub on loopback: the model-info API and file downloads.

Serves what huggingface_hub's `HfApi.model_info(files_metadata=True)` and
`hf_hub_download` ask for (plain HTTP, no Xet headers, so the client takes its
HTTP path). Each file can be served corrupt (other bytes, same size) or
truncated (fewer bytes than recorded), to test that the stager refuses them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlparse

from tests.loopback import base_url, serving

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubRepo:
    repo_id: str
    files: dict[str, bytes]
    lfs: set[str] = field(default_factory=set)  # files recorded with an LFS sha256
    corrupt: dict[str, int] = field(default_factory=dict)  # path -> times served corrupt
    truncated: dict[str, int] = field(default_factory=dict)  # path -> times served short
    downloads: list[str] = field(default_factory=list)

    def sibling(self, path: str) -> dict:
        data = self.files[path]
        entry = {"rfilename": path, "size": len(data)}
        if path in self.lfs:
            entry["blobId"] = hashlib.sha1(data).hexdigest()  # a pointer's id; not checked
            entry["lfs"] = {
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "pointerSize": 134,
            }
        else:
            entry["blobId"] = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
        return entry


class _Handler(BaseHTTPRequestHandler):
    repo: HubRepo

    def log_message(self, *args):  # quiet
        pass

    def _file(self, path: str) -> tuple[bytes, str] | None:
        prefix = f"/{self.repo.repo_id}/resolve/"
        if not path.startswith(prefix):
            return None
        _revision, _, name = path[len(prefix) :].partition("/")
        if name not in self.repo.files:
            return None
        return self.repo.files[name], name

    def _headers_for(self, data: bytes, name: str, length: int) -> None:
        etag = hashlib.sha256(data).hexdigest() if name in self.repo.lfs else "plain-" + name
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Content-Length", str(length))
        if name in self.repo.lfs:
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(len(data)))

    def do_HEAD(self):
        found = self._file(unquote(urlparse(self.path).path))
        if found is None:
            self.send_error(404)
            return
        data, name = found
        self.send_response(200)
        self._headers_for(data, name, len(data))
        self.end_headers()

    def do_GET(self):
        path = unquote(urlparse(self.path).path)
        info_prefix = f"/api/models/{self.repo.repo_id}"
        if path.startswith(info_prefix):
            body = json.dumps(
                {
                    "id": self.repo.repo_id,
                    "sha": COMMIT,
                    "siblings": [self.repo.sibling(p) for p in sorted(self.repo.files)],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        found = self._file(path)
        if found is None:
            self.send_error(404)
            return
        data, name = found
        self.repo.downloads.append(name)
        if self.repo.corrupt.get(name, 0) > 0:
            self.repo.corrupt[name] -= 1
            data_sent = bytes(b ^ 0xFF for b in data)  # same size, other bytes
            length = len(data)
        elif self.repo.truncated.get(name, 0) > 0:
            self.repo.truncated[name] -= 1
            data_sent = data[: len(data) // 2]
            length = len(data_sent)  # a short but well-formed response
        else:
            data_sent, length = data, len(data)
        self.send_response(200)
        self._headers_for(data, name, length)
        self.end_headers()
        self.wfile.write(data_sent)


class StandInHub:
    def __init__(self, repo: HubRepo):
        self.repo = repo
        self._serving = serving(type("Handler", (_Handler,), {"repo": repo}))
        self.url = ""

    def __enter__(self) -> StandInHub:
        self.url = base_url(self._serving.__enter__())
        return self

    def __exit__(self, *exc) -> None:
        self._serving.__exit__(*exc)
