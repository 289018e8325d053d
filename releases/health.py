"""Readiness: can this process do its work now? PostgreSQL, the broker (Redis), the OCI registry
(``GET /v2/``) and, where ``HEALTH_CHECK_ENGINE`` is on (build workers), the Docker engine.

Each check answers within ``HEALTH_CHECK_TIMEOUT_SECONDS`` and reports its status and latency;
a failing one says what failed, scrubbed of credentials. Liveness (``/api/v1/health/``) checks
nothing on purpose: a database outage must not get every web process restarted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

from .engine_readiness import EngineCannotBuild, build_engine_report
from .redaction import scrub
from .registry_client import registry_client


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    latency_ms: float
    error: str = ""
    details: dict | None = None

    def as_dict(self) -> dict:
        answer = {"status": "ok" if self.ok else "failing", "latency_ms": round(self.latency_ms, 1)}
        if self.error:
            answer["error"] = self.error
        if self.details:
            answer.update(self.details)
        return answer


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return  # the in-memory broker of eager runs has nothing to reach
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def check_registry() -> None:
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    with registry_client(timeout=timeout, retries=0, max_retry_after=1) as client:
        client.check()


def check_engine() -> dict:
    """The engine answers, its BuildKit CLI can drive it, and it runs every platform we build."""
    return build_engine_report(settings.DOCKER_HOST, settings.HEALTH_CHECK_TIMEOUT_SECONDS)


def checks() -> dict[str, Callable[[], dict | None]]:
    """The checks this process runs, by name."""
    named = {"database": check_database, "broker": check_broker, "registry": check_registry}
    if settings.HEALTH_CHECK_ENGINE:
        named["engine"] = check_engine
    return named


def run_check(name: str, check: Callable[[], dict | None]) -> CheckResult:
    started = time.perf_counter()
    try:
        details = check()
    except EngineCannotBuild as error:
        text = scrub(str(error), settings.SCRUBBED_SECRETS, settings.SCRUBBED_PATHS)
        return CheckResult(name, False, (time.perf_counter() - started) * 1000, text[:500], error.details)
    except Exception as error:  # noqa: BLE001 - any failure makes the service not ready, named
        text = scrub(f"{type(error).__name__}: {error}", settings.SCRUBBED_SECRETS, settings.SCRUBBED_PATHS)
        return CheckResult(name, False, (time.perf_counter() - started) * 1000, text[:500])
    return CheckResult(name, True, (time.perf_counter() - started) * 1000, details=details)


def readiness() -> tuple[bool, dict]:
    """``(ready, body)``: every check's status and latency, and the failing ones named."""
    results = [run_check(name, check) for name, check in checks().items()]
    failing = [result.name for result in results if not result.ok]
    body = {
        "status": "ready" if not failing else "not ready",
        "failing": failing,
        "checks": {result.name: result.as_dict() for result in results},
    }
    return not failing, body
