"""A real CNCF distribution registry (Debian's ``docker-registry``) started on a loopback port, for
the tests, the benchmarks and anything else that needs a disposable registry. Plain Python."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


REGISTRY_BINARY = "docker-registry"


class RegistryStartError(RuntimeError):
    """The registry process exited or did not answer ``GET /v2/`` in time."""


@dataclass
class RunningRegistry:
    """A registry process started by :func:`start_registry`."""

    process: subprocess.Popen[bytes]
    host: str  # "127.0.0.1:PORT"
    root: Path  # filesystem storage directory
    workdir: Path  # holds config.yml and registry.log
    log_path: Path
    scheme: str = "http"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _to_yaml(data: dict[str, Any], indent: int = 0) -> str:
    """Tiny YAML writer for nested dicts/lists of scalars (JSON-compatible, no PyYAML needed)."""
    out: list[str] = []
    pad = "  " * indent
    for key, value in data.items():
        if isinstance(value, dict):
            if value:
                out.append(f"{pad}{key}:")
                out.append(_to_yaml(value, indent + 1))
            else:
                out.append(f"{pad}{key}: {{}}")
        elif isinstance(value, list):
            out.append(f"{pad}{key}: [{', '.join(_yaml_scalar(v) for v in value)}]")
        else:
            out.append(f"{pad}{key}: {_yaml_scalar(value)}")
    return "\n".join(line for line in out if line)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def registry_config(root: Path, port: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The registry's config: filesystem storage under ``root``, deletes enabled, loopback only."""
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(root)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": "test-only-secret"},
    }
    return _merge(config, extra or {})


def start_registry(
    workdir: str | Path,
    config_extra: dict[str, Any] | None = None,
    *,
    timeout: float = 20.0,
    binary: str | None = None,
) -> RunningRegistry:
    """Start ``docker-registry serve`` on a free loopback port and wait until ``/v2/`` answers.

    ``config_extra`` is deep-merged into the default config (e.g. ``{"auth": {...}}``).
    Raises ``FileNotFoundError`` when the binary is missing and :class:`RegistryStartError`
    (with the log tail) when the process dies or never answers.
    """
    exe = binary or shutil.which(REGISTRY_BINARY)
    if exe is None:
        raise FileNotFoundError(f"'{REGISTRY_BINARY}' is not installed; apt-get install docker-registry")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "storage"
    root.mkdir(exist_ok=True)
    port = free_port()
    config_path = workdir / "config.yml"
    config_path.write_text(_to_yaml(registry_config(root, port, config_extra)) + "\n")
    log_path = workdir / "registry.log"
    log = log_path.open("ab")
    try:
        process = subprocess.Popen(
            [exe, "serve", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
        )
    finally:
        log.close()
    host = f"127.0.0.1:{port}"
    registry = RunningRegistry(process=process, host=host, root=root, workdir=workdir, log_path=log_path)
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as http:
        while True:
            if process.poll() is not None:
                raise RegistryStartError(
                    f"docker-registry exited with code {process.returncode} at start-up; "
                    f"log tail ({log_path}):\n{registry.log_tail()}"
                )
            try:
                response = http.get(f"{registry.url}/v2/")
                if response.status_code in (200, 401):
                    return registry
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                registry.stop()
                raise RegistryStartError(
                    f"docker-registry did not answer GET /v2/ within {timeout:.0f}s; "
                    f"log tail ({log_path}):\n{registry.log_tail()}"
                )
            time.sleep(0.05)
