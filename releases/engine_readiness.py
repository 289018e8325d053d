"""What a build worker's engine can do, asked once per process and engine: its BuildKit CLI and the
platforms it runs (natively or through qemu). Readiness (``/api/v1/health/ready/``, ``manage.py
ready`` with ``HEALTH_CHECK_ENGINE=true``) shows it; a missing platform makes the worker not ready,
naming the platform and the fix."""

from __future__ import annotations

import functools

from django.conf import settings

from .imagebuild import connect_engine
from .imagebuild.buildkit import CliCapabilities, check_cli
from .imagebuild.emulation import emulation_fix, engine_platforms


class EngineCannotBuild(Exception):
    """The engine answers but cannot build what we build; ``details`` says what it can."""

    def __init__(self, message: str, details: dict) -> None:
        super().__init__(message)
        self.details = details


@functools.lru_cache(maxsize=8)
def _cli_capabilities(cli: str, docker_host: str, timeout: float) -> CliCapabilities:
    # Once per process: the CLI and the engine do not change version under a running worker.
    return check_cli(cli, docker_host, timeout=timeout)


def build_engine_report(docker_host: str, timeout: float) -> dict:
    """``{"engine": version, "buildkit_cli": ..., "platforms": {...}}``; raises when not buildable."""
    client = connect_engine(docker_host, timeout=timeout)
    try:
        architecture = str(client.info().get("Architecture", ""))
    finally:
        client.close()
    capabilities = _cli_capabilities(settings.BUILDKIT_DOCKER_CLI, docker_host, float(timeout))
    runnable = engine_platforms(docker_host, architecture)
    details = {
        "engine": capabilities.engine_version,
        "buildkit_cli": f"{capabilities.cli} {capabilities.cli_version}",
        "platforms": runnable.as_dict(),
    }
    missing = runnable.missing(list(settings.IMAGE_PLATFORMS))
    if missing:
        raise EngineCannotBuild(emulation_fix(missing), details)
    return details
