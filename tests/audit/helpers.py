"""Pushing small images/charts for the audit tests, and a proxy that breaks chosen repositories."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from releases.oci import (
    Descriptor,
    PlatformManifest,
    RegistryClient,
    build_index,
    build_manifest,
    canonical_json,
    sha256_digest,
)
from releases.oci.media_types import HELM_CHART_CONTENT, HELM_CONFIG, OCI_INDEX, OCI_MANIFEST
from tests.fixtures.base_image import push_multiarch_base_image

PLATFORMS = frozenset({"linux/amd64", "linux/arm64"})


@dataclass(frozen=True)
class PushedImage:
    repository: str
    tag: str
    digest: str  # the index
    entries: tuple[PlatformManifest, ...]

    def entry(self, architecture: str) -> PlatformManifest:
        return next(entry for entry in self.entries if entry.architecture == architecture)


def push_image(client: RegistryClient, repository: str, tag: str) -> PushedImage:
    """The tiny two-platform base image (OCI index: linux/amd64 + linux/arm64/v8) as ``repository:tag``."""
    image = push_multiarch_base_image(client, repository, tag)
    body, _, _ = client.get_manifest(repository, image.index_digest)
    entries = tuple(
        PlatformManifest(
            digest=item["digest"],
            size=item["size"],
            os=item["platform"]["os"],
            architecture=item["platform"]["architecture"],
            variant=item["platform"].get("variant"),
            media_type=item["mediaType"],
        )
        for item in json.loads(body)["manifests"]
    )
    return PushedImage(repository, tag, image.index_digest, entries)


def put_index(
    client: RegistryClient, repository: str, tag: str, entries: list[PlatformManifest], **annotations: str
) -> str:
    """Overwrite ``repository:tag`` with an index of ``entries`` (annotations change the digest)."""
    return client.put_manifest(repository, tag, build_index(entries, annotations or None), OCI_INDEX)


def push_chart(client: RegistryClient, repository: str, tag: str, version: str) -> str:
    """A minimal Helm chart artifact (OCI manifest, Helm config media type)."""
    content = f"chart {repository} {version}".encode() * 10
    config = canonical_json({"apiVersion": "v2", "name": repository.rsplit("/", 1)[-1], "version": version})
    layer = Descriptor(HELM_CHART_CONTENT, sha256_digest(content), len(content))
    config_descriptor = Descriptor(HELM_CONFIG, sha256_digest(config), len(config))
    client.push_blob(repository, layer.digest, layer.size, content)
    client.push_blob(repository, config_descriptor.digest, config_descriptor.size, config)
    manifest = build_manifest(config_descriptor, [layer])
    return client.put_manifest(repository, tag, manifest, OCI_MANIFEST)


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}

#: ``rule(method, path, request_number_on_this_connection) -> action``:
#: "forward", "503" (answer 503), "drop" (close the connection without answering),
#: "forward-then-drop" (answer, then close the connection without saying so) or "slow" (wait
#: ``slow_seconds``, then forward).
Rule = Callable[[str, str, int], str]


class BreakingProxy:
    """An HTTP/1.1 keep-alive proxy in front of a real registry that breaks what ``rule`` says."""

    def __init__(self, upstream: str, rule: Rule, slow_seconds: float = 2.0) -> None:
        self.upstream = upstream
        self.rule = rule
        self.slow_seconds = slow_seconds
        self.requests: list[tuple[str, str, str]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=10)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.served = 0
                with proxy._lock:
                    proxy.connections += 1

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                pass

            def _handle(self) -> None:
                self.served += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action = proxy.rule(self.command, self.path, self.served)
                with proxy._lock:
                    proxy.requests.append((self.command, self.path, action))
                if action == "slow":
                    time.sleep(proxy.slow_seconds)
                if action == "drop":
                    self.close_connection = True
                    return
                if action == "503":
                    payload = b'{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = proxy._http.request(
                    self.command, proxy.upstream + self.path, headers=headers, content=body or None
                )
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", upstream.headers.get("Content-Length", str(len(upstream.content))))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(upstream.content)
                if action == "forward-then-drop":
                    self.close_connection = True

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle  # noqa: N815

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients closing keep-alive connections are not errors here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._http.close()
