"""Build one platform's image with a Docker engine (classic builder, through the Docker SDK).

The engine only builds: nothing is pushed from here and no tag is applied. The caller exports the
result with :func:`releases.imagebuild.export.export_image` and pushes it with its own OCI client.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors

from releases.imagebuild.errors import ENGINE_UNAVAILABLE_ERRORS, BuildFailed, EngineUnavailable

LOG_TAIL_LINES = 20
_STEP_RE = re.compile(r"^Step \d+/\d+ : ")
_SUCCESS_RE = re.compile(r"^Successfully built ([0-9a-f]{12,64})\s*$")
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}

_UNAVAILABLE_ERRORS = ENGINE_UNAVAILABLE_ERRORS


def connect_engine(base_url: str | None = None, *, timeout: float = 60.0) -> docker.DockerClient:
    """A client for the engine at ``base_url`` (``None``: ``DOCKER_HOST`` / the default socket).

    The API version is negotiated, which needs the engine: :class:`EngineUnavailable` when it does
    not answer.
    """
    try:
        client = (
            docker.from_env(timeout=int(timeout))
            if base_url is None
            else docker.DockerClient(base_url=base_url, timeout=int(timeout))
        )
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        where = base_url or "DOCKER_HOST"
        raise EngineUnavailable(f"cannot reach the docker engine at {where}: {exc}") from exc


def parse_platform(platform: str) -> tuple[str, str, str]:
    """``"linux/arm64/v8"`` -> ``("linux", "arm64", "v8")``; the variant may be ``""``."""
    parts = platform.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform {platform!r} is not os/arch[/variant]")
    os_name, arch = parts[0], _ARCH_ALIASES.get(parts[1], parts[1])
    variant = parts[2] if len(parts) == 3 else ""
    return os_name, arch, variant


def platform_matches(requested: str, os_name: str, arch: str, variant: str | None) -> bool:
    want_os, want_arch, want_variant = parse_platform(requested)
    got_arch = _ARCH_ALIASES.get((arch or "").lower(), (arch or "").lower())
    if (os_name or "").lower() != want_os or got_arch != want_arch:
        return False
    # An image without a variant is fine for any variant (arm64 images usually omit "v8").
    return not (want_variant and variant and variant.lower() != want_variant)


class _LogRelay:
    """Turn the engine's JSON messages into log lines for ``on_log``; keep a tail and the state."""

    def __init__(self, on_log: Callable[[str], None]):
        self.on_log = on_log
        self.tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self.partial = ""
        self.step: str | None = None
        self.error: str | None = None
        self.image_id: str | None = None
        self.short_id: str | None = None
        self.used_cache = False

    def _line(self, line: str) -> None:
        line = line.rstrip("\r")
        if not line.strip():
            return
        if _STEP_RE.match(line):
            self.step = line
        elif line.strip() == "---> Using cache":
            self.used_cache = True
        match = _SUCCESS_RE.match(line)
        if match:
            self.short_id = match.group(1)
        self.tail.append(line)
        self.on_log(line)

    def feed(self, message: Mapping[str, Any]) -> None:
        if "stream" in message:
            text = self.partial + str(message["stream"])
            *complete, self.partial = text.split("\n")
            for line in complete:
                self._line(line)
        if "status" in message and not message.get("progress"):
            self.flush()
            prefix = f"{message['id']}: " if message.get("id") else ""
            self._line(f"{prefix}{message['status']}")
        if "error" in message or "errorDetail" in message:
            self.flush()
            detail = message.get("errorDetail") or {}
            self.error = str(message.get("error") or detail.get("message") or "unknown error")
            self._line(f"ERROR: {self.error}")
        aux = message.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            self.image_id = aux["ID"]

    def flush(self) -> None:
        if self.partial:
            line, self.partial = self.partial, ""
            self._line(line)

    def failure(self, platform: str, error: str) -> BuildFailed:
        where = f"at {self.step!r}" if self.step else "before the first step"
        tail = list(self.tail)
        message = f"docker build for {platform} failed {where}: {error}"
        if tail:
            message += f"\nlast {len(tail)} log lines:\n" + "\n".join(tail)
        return BuildFailed(message, step=self.step, log_tail=tail)


def _run_build(
    client: docker.DockerClient,
    relay: _LogRelay,
    build_kwargs: dict[str, Any],
) -> None:
    platform = build_kwargs["platform"]
    try:
        stream: Iterable[Mapping[str, Any]] = client.api.build(**build_kwargs)
        for message in stream:
            relay.feed(message)
    except docker.errors.APIError as exc:
        relay.flush()
        if exc.status_code in (502, 503, 504):
            raise EngineUnavailable(f"docker engine answered {exc.status_code}: {exc.explanation}") from exc
        raise relay.failure(platform, str(exc.explanation or exc)) from exc
    except _UNAVAILABLE_ERRORS as exc:
        relay.flush()
        raise EngineUnavailable(f"lost the docker engine during the {platform} build: {exc}") from exc
    except docker.errors.DockerException as exc:
        relay.flush()
        raise relay.failure(platform, str(exc)) from exc
    relay.flush()
    if relay.error is not None:
        raise relay.failure(platform, relay.error)


def build_platform_image(
    client: docker.DockerClient,
    context_dir: Path,
    dockerfile: str,
    platform: str,
    labels: dict[str, str],
    on_log: Callable[[str], None],
    pull: bool = True,
    *,
    build_args: Mapping[str, str] | None = None,
    nocache: bool = False,
    timeout: float | None = None,
) -> str:
    """Build ``dockerfile`` (relative to ``context_dir``) for ``platform``; return the image id.

    Every log line is passed to ``on_log`` as it arrives (build output, pull progress, errors).
    ``labels`` are added to the image config. ``pull`` makes the engine fetch the newest base image
    for ``platform`` (needed when several platforms share one engine: the classic image store keeps
    one image per tag). ``timeout`` is the socket read timeout (``None``: wait as long as steps take).

    The image's os/architecture is checked against ``platform``. The classic builder's cache ignores
    the platform for stages without a base image, so a mismatch after a cached build is retried once
    without cache.

    Raises :class:`BuildFailed` (naming the failing step, with the last log lines) or
    :class:`EngineUnavailable` (transient: retry later).
    """
    parse_platform(platform)  # ValueError early for a malformed platform
    context_dir = Path(context_dir)
    if not context_dir.is_dir():
        raise BuildFailed(f"build context {context_dir} is not a directory")
    if not (Path(dockerfile) if Path(dockerfile).is_absolute() else context_dir / dockerfile).is_file():
        raise BuildFailed(f"Dockerfile {dockerfile!r} not found in the build context {context_dir}")
    build_kwargs: dict[str, Any] = {
        "path": str(context_dir),
        "dockerfile": dockerfile,
        "platform": platform,
        "labels": dict(labels),
        "pull": pull,
        "rm": True,
        "forcerm": True,
        "decode": True,
        "nocache": nocache,
        "buildargs": dict(build_args) if build_args else None,
        "timeout": timeout,
    }
    for attempt in range(2):
        relay = _LogRelay(on_log)
        _run_build(client, relay, build_kwargs)
        image_id = relay.image_id
        try:
            if image_id is None and relay.short_id is not None:
                image_id = client.api.inspect_image(relay.short_id)["Id"]
            if image_id is None:
                raise EngineUnavailable(f"the {platform} build stream ended without an image id")
            info = client.api.inspect_image(image_id)
        except docker.errors.ImageNotFound as exc:
            raise relay.failure(platform, f"built image {image_id or relay.short_id} vanished") from exc
        except _UNAVAILABLE_ERRORS as exc:
            raise EngineUnavailable(f"lost the docker engine after the {platform} build: {exc}") from exc
        got = "/".join(p for p in (info.get("Os"), info.get("Architecture"), info.get("Variant")) if p)
        if platform_matches(platform, info.get("Os", ""), info.get("Architecture", ""), info.get("Variant")):
            return str(image_id)
        if attempt == 0 and relay.used_cache and not build_kwargs["nocache"]:
            on_log(f"the build cache gave a {got} image for {platform}; rebuilding without cache")
            build_kwargs["nocache"] = True
            continue
        raise relay.failure(platform, f"the engine built a {got} image, not {platform}")
    raise AssertionError("unreachable")
