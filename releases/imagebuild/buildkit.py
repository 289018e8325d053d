"""Build one platform's image with the engine's BuildKit, through the docker CLI of the engine.

This module owns that program: it builds the argv (never a shell string), sets the environment
(``DOCKER_BUILDKIT=1``, ``DOCKER_HOST``, a private ``DOCKER_CONFIG``), reads the ``--progress=plain``
output into steps (name, cached or not, duration, the tail of its output) and maps exit codes and
known messages to our errors. Callers never see the argv or the raw output.

Why this route (measured on Debian 12's ``docker.io`` 20.10): the engine carries BuildKit 0.8
(Dockerfile frontend 1.2), which the same package's ``/usr/bin/docker`` drives with
``DOCKER_BUILDKIT=1``; a newer docker CLI without the buildx plugin cannot, and docker-py speaks
only the classic builder's API (docker/docker-py#2230). The image lands in the engine's image store;
the caller exports it with :func:`releases.imagebuild.export.export_image` and pushes it itself.

What the CLI can do is checked once (:func:`check_cli`, at readiness), not in the middle of a build.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from releases.imagebuild.errors import BuildFailed, BuildkitUnavailable, EmulationMissing, EngineUnavailable

OUTPUT_TAIL_LINES = 20
MINIMUM_CLI = (20, 10)
NETWORKS = ("none", "host", "default")

_VERTEX_RE = re.compile(r"^#(\d+) (.*)$")
_OUTPUT_RE = re.compile(r"^(\d+\.\d+) (.*)$")
_DONE_RE = re.compile(r"^DONE (\d+(?:\.\d+)?)s$")
_NOISE_RE = re.compile(
    r"^(sha256:[0-9a-f]{64}( [\d.]+[kMG]?B / [\d.]+[kMG]?B.*)?$|extracting sha256:|resolve |transferring )"
)
_UNREACHABLE = (
    "Cannot connect to the Docker daemon",
    "error during connect",
    "connection refused",
    "connection reset by peer",
    "transport is closing",
    "error reading from server",
    "code = Unavailable",
    "broken pipe",
    "unexpected EOF",
)
_CANCELLED = "context canceled"
#: The CLI's words when the engine ended a build without the image's id, now and then under
#: parallel builds (docker/cli#2971, open): seen here in a benchmark, both images of a release at
#: once, nothing else in the output. Building again succeeds.
_NO_IMAGE_ID = "server did not provide an image ID"


@dataclass(frozen=True)
class BuildSecret:
    """An operator's build secret: what ``RUN --mount=type=secret,id=<id>`` reads.

    ``file`` is passed as it is; a ``value`` alone is written to a private file for the build and
    deleted after it. The value never reaches an argv, a log or a record (``repr`` hides it).
    """

    id: str
    file: Path | None = None
    value: str | None = field(default=None, repr=False)


@dataclass
class BuildStep:
    """One step of the build as BuildKit reported it (``[stage-1 2/5] RUN ...``)."""

    name: str
    cached: bool = False
    seconds: float | None = None
    error: str | None = None
    output: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_TAIL_LINES))

    @property
    def is_user_step(self) -> bool:
        """A Dockerfile instruction, not BuildKit's own work (loading the context, exporting)."""
        return self.name.startswith("[") and not self.name.startswith("[internal]")

    def record(self) -> dict[str, Any]:
        """What is kept of the step in the image's build record (no output: it may be large)."""
        recorded: dict[str, Any] = {"step": self.name, "cached": self.cached, "seconds": self.seconds}
        if self.error:
            recorded["error"] = self.error
        return recorded

    def summary(self) -> str:
        if self.error:
            return f"{self.name}: FAILED ({self.error})"
        return f"{self.name}: {'cached' if self.cached else f'{self.seconds or 0:.1f}s'}"


@dataclass
class BuiltImage:
    """A finished build: the image id in the engine and its steps."""

    image_id: str
    platform: str
    network: str
    steps: list[BuildStep]
    seconds: float

    @property
    def cached_steps(self) -> list[str]:
        return [step.name for step in self.steps if step.cached]


class ProgressReader:
    """Reads ``--progress=plain`` lines into :class:`BuildStep` s; keeps what follows the last step.

    Plain progress prefixes every line with ``#<vertex>``: the first line of a vertex is its name,
    later ones are ``CACHED``, ``DONE 1.2s``, ``ERROR: ...``, ``<seconds> <output line>`` or transfer
    noise. Lines without a prefix come at the end of a failed build (the error summary).
    """

    def __init__(self) -> None:
        self.vertices: dict[str, BuildStep] = {}
        self.trailer: list[str] = []

    def feed(self, line: str) -> str | None:
        """Take one line; return it for the build log, or ``None`` for transfer noise."""
        line = line.rstrip("\r\n")
        match = _VERTEX_RE.match(line)
        if match is None:
            if line.strip() and line.strip() != "------":
                self.trailer.append(line.strip())
            return line if line.strip() else None
        vertex, text = match.groups()
        step = self.vertices.get(vertex)
        if step is None:
            self.vertices[vertex] = BuildStep(name=text)
            return line
        if text == step.name or _NOISE_RE.match(text):
            return None
        if text == "CACHED":
            step.cached = True
            step.seconds = 0.0
        elif (done := _DONE_RE.match(text)) is not None:
            step.seconds = float(done.group(1))
        elif text.startswith("ERROR: "):
            step.error = text[len("ERROR: ") :]
        elif (output := _OUTPUT_RE.match(text)) is not None:
            step.output.append(output.group(2))
        return line

    @property
    def steps(self) -> list[BuildStep]:
        return [step for step in self.vertices.values() if step.is_user_step]

    @property
    def failed_step(self) -> BuildStep | None:
        """The step that failed; steps cancelled because another one failed do not count."""
        failed = [step for step in self.vertices.values() if step.error]
        return next((step for step in failed if _CANCELLED not in (step.error or "")), None)


@dataclass(frozen=True)
class CliCapabilities:
    """What :func:`check_cli` found: the CLI's version and the engine's."""

    cli: str
    cli_version: str
    engine_version: str
    engine_architecture: str


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:2])


def _environment(docker_host: str, config_dir: Path) -> dict[str, str]:
    env = {
        "DOCKER_BUILDKIT": "1",
        "DOCKER_HOST": docker_host,
        "DOCKER_CONFIG": str(config_dir),
        "BUILDKIT_PROGRESS": "plain",
        "NO_COLOR": "1",
        "HOME": str(config_dir),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    return env


def check_cli(cli: str, docker_host: str, *, timeout: float = 20.0) -> CliCapabilities:
    """Ask the CLI and the engine their versions; refuse a CLI that cannot drive BuildKit.

    Raises :class:`BuildkitUnavailable` (what is missing and how to install it) or
    :class:`EngineUnavailable` when the engine does not answer.
    """
    if not (shutil.which(cli) if os.sep not in cli else os.access(cli, os.X_OK) and cli):
        raise BuildkitUnavailable(
            f"the docker CLI {cli} is not installed: apt-get install docker.io (its /usr/bin/docker drives the "
            "engine's BuildKit), or point BUILDKIT_DOCKER_CLI at a docker CLI 20.10+"
        )
    with tempfile.TemporaryDirectory(prefix="bk-check-") as config_dir:
        try:
            done = subprocess.run(
                [cli, "version", "--format", "{{json .}}"],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=_environment(docker_host, Path(config_dir)),
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as error:
            raise EngineUnavailable(
                f"the docker engine at {docker_host} did not answer within {timeout:.0f}s"
            ) from error
    try:
        versions = json.loads(done.stdout.strip().splitlines()[0]) if done.stdout.strip() else {}
    except (json.JSONDecodeError, IndexError):
        versions = {}
    client, server = versions.get("Client") or {}, versions.get("Server") or {}
    if not server:
        if any(message in done.stderr for message in _UNREACHABLE):
            raise EngineUnavailable(f"cannot reach the docker engine at {docker_host}: {done.stderr.strip()[-300:]}")
        raise BuildkitUnavailable(f"{cli} version failed: {(done.stderr or done.stdout).strip()[-300:]}")
    cli_version = str(client.get("Version", ""))
    if _version_tuple(cli_version) < MINIMUM_CLI:
        raise BuildkitUnavailable(
            f"the docker CLI {cli} is {cli_version}; BuildKit builds need 20.10 or newer (apt-get install docker.io)"
        )
    if _version_tuple(str(server.get("Version", ""))) < MINIMUM_CLI:
        raise BuildkitUnavailable(
            f"the docker engine at {docker_host} is {server.get('Version')}; BuildKit builds need 20.10 or newer"
        )
    return CliCapabilities(cli, cli_version, str(server.get("Version", "")), str(server.get("Arch", "")))


def build_argv(
    cli: str,
    context_dir: Path,
    dockerfile: str,
    platform: str,
    *,
    iidfile: Path,
    labels: Mapping[str, str],
    build_args: Mapping[str, str],
    network: str,
    secret_files: Mapping[str, Path],
    cache_from: Sequence[str] = (),
    no_cache: bool = False,
) -> list[str]:
    """The ``docker build`` argv of one platform's build (secrets by file, never by value)."""
    dockerfile_path = context_dir / dockerfile  # the CLI reads --file from its own working directory
    argv = [cli, "build", "--progress=plain", "--platform", platform, "--file", str(dockerfile_path)]
    argv += ["--iidfile", str(iidfile)]
    if network != "default":
        argv += ["--network", network]
    for name, value in sorted(labels.items()):
        argv += ["--label", f"{name}={value}"]
    # Inline cache metadata in the image config, so a later release on another engine can use the
    # pushed image as its cache (--cache-from).
    for name, value in sorted({**build_args, "BUILDKIT_INLINE_CACHE": "1"}.items()):
        argv += ["--build-arg", f"{name}={value}"]
    for secret_id, path in sorted(secret_files.items()):
        argv += ["--secret", f"id={secret_id},src={path}"]
    for reference in cache_from:
        argv += ["--cache-from", reference]
    if no_cache:
        argv.append("--no-cache")
    argv.append(str(context_dir))
    return argv


def _secret_files(secrets: Iterable[BuildSecret], private_dir: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for secret in secrets:
        if secret.file is not None:
            files[secret.id] = secret.file
        elif secret.value is not None:
            path = private_dir / f"secret-{len(files)}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secret.value)
            files[secret.id] = path
    return files


def _registry_auth(config_dir: Path, registry_auth: Mapping[str, tuple[str, str]]) -> None:
    """A ``config.json`` with the credentials of our own registry (for ``--cache-from``), nothing else."""
    import base64

    auths = {
        host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        for host, (user, password) in registry_auth.items()
    }
    path = config_dir / "config.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"auths": auths}, handle)


def build_image(
    context_dir: Path,
    dockerfile: str,
    platform: str,
    *,
    cli: str,
    docker_host: str,
    on_log: Callable[[str], None],
    labels: Mapping[str, str] | None = None,
    build_args: Mapping[str, str] | None = None,
    network: str = "none",
    secrets: Iterable[BuildSecret] = (),
    cache_from: Sequence[str] = (),
    registry_auth: Mapping[str, tuple[str, str]] | None = None,
    timeout: float = 1800.0,
    no_cache: bool = False,
) -> BuiltImage:
    """Build ``dockerfile`` (relative to ``context_dir``) for ``platform`` with BuildKit.

    Every line of the build's output (less transfer noise) goes to ``on_log`` as it arrives, then a
    summary line per step. Raises :class:`BuildFailed` naming the failing step, the platform and
    the last lines of its output; :class:`EmulationMissing` when the engine cannot run a RUN of
    ``platform``; :class:`EngineUnavailable` when the engine went away; :class:`BuildkitUnavailable`
    when the CLI cannot be run.
    """
    if network not in NETWORKS:
        raise ValueError(f"network {network!r} is not one of {', '.join(NETWORKS)}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bk-") as private:
        private_dir = Path(private)
        config_dir = private_dir / "config"
        config_dir.mkdir(mode=0o700)
        if registry_auth:
            _registry_auth(config_dir, registry_auth)
        iidfile = private_dir / "iid"
        argv = build_argv(
            cli,
            Path(context_dir),
            dockerfile,
            platform,
            iidfile=iidfile,
            labels=labels or {},
            build_args=build_args or {},
            network=network,
            secret_files=_secret_files(secrets, private_dir),
            cache_from=cache_from,
            no_cache=no_cache,
        )
        reader = ProgressReader()
        returncode, timed_out = _run(argv, _environment(docker_host, config_dir), reader, on_log, timeout)
        image_id = iidfile.read_text().strip() if iidfile.exists() else ""
    steps = reader.steps
    for step in steps:
        on_log(f"step {step.summary()}")
    if timed_out:
        raise _failure(platform, reader, f"stopped after {timeout:.0f}s (BUILD_TIMEOUT_SECONDS)")
    if returncode != 0 or not image_id:
        raise _classify(platform, reader, returncode)
    return BuiltImage(image_id, platform, network, steps, round(time.monotonic() - started, 3))


def _run(
    argv: list[str],
    env: dict[str, str],
    reader: ProgressReader,
    on_log: Callable[[str], None],
    timeout: float,
) -> tuple[int, bool]:
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as error:
        raise BuildkitUnavailable(
            f"cannot run the docker CLI {argv[0]} ({error.strerror}): apt-get install docker.io"
        ) from error
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, stop)
    timer.daemon = True
    timer.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            shown = reader.feed(line)
            if shown is not None:
                on_log(shown)
        returncode = process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return returncode, timed_out.is_set()


def _failure(platform: str, reader: ProgressReader, error: str, step: BuildStep | None = None) -> BuildFailed:
    step = step or reader.failed_step
    where = f"at step {step.name}" if step else "before the first step"
    tail = list(step.output) if step else reader.trailer[-OUTPUT_TAIL_LINES:]
    message = f"the {platform} build failed {where}: {error}"
    if tail:
        message += f"\nlast {len(tail)} lines of its output:\n" + "\n".join(tail)
    return BuildFailed(message, step=step.name if step else None, log_tail=tail, platform=platform)


def _classify(platform: str, reader: ProgressReader, returncode: int) -> BuildFailed:
    step = reader.failed_step
    error = step.error if step and step.error else (reader.trailer[-1] if reader.trailer else f"exit code {returncode}")
    everything = " ".join([error, *reader.trailer, *(step.output if step else [])])
    if "exec format error" in everything:
        raise EmulationMissing(
            f"the engine cannot run {platform} programs (a RUN step of the {platform} build failed with "
            f"'exec format error'): install qemu-user-static and binfmt-support on the engine's host "
            f"(bin/setup does) so binfmt_misc runs them with the F flag"
        )
    if step is None and (any(message in everything for message in _UNREACHABLE) or _CANCELLED in everything):
        # No step failed on its own: the engine went away under the build (restarted, killed).
        raise EngineUnavailable(f"lost the docker engine during the {platform} build: {error}")
    if step is None and _NO_IMAGE_ID in everything:
        raise EngineUnavailable(
            f"the docker engine ended the {platform} build without an image id (docker/cli#2971, intermittent): {error}"
        )
    if "network bridge not found" in everything:
        error += " (the engine has no bridge network: set BUILD_NETWORK=none, or leave it unset)"
    return _failure(platform, reader, error, step)


def engine_network(network_names: Iterable[str], configured: str | None) -> tuple[str, str]:
    """The build network and why: the configured one, else ``default`` where the engine has a
    ``bridge`` network and ``none`` where it has not."""
    if configured:
        return configured, "BUILD_NETWORK"
    if "bridge" in set(network_names):
        return "default", "the engine has a bridge network"
    return "none", "the engine has no bridge network"
