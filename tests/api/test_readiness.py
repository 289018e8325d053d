"""Readiness against live services: PostgreSQL, Redis (the broker), the registry and, where
configured, the Docker engine; liveness stays trivial whatever is down."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.fixtures.services import service_missing

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own (never the shared one), to stop."""
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server is not installed; run bin/setup (the machine's Redis package provides it)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port, process
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def ready_settings(settings, oci_registry):
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/ready/threek8s"
    settings.HEALTH_CHECK_ENGINE = False
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 2
    return settings


def ready() -> tuple[int, dict]:
    response = APIClient().get("/api/v1/health/ready/")
    return response.status_code, response.json()


def test_ready_when_every_service_answers_with_each_checks_latency(ready_settings):
    status, body = ready()
    assert status == 200, body
    assert body["status"] == "ready" and body["failing"] == []
    assert set(body["checks"]) == {"database", "broker", "registry"}
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert 0 <= check["latency_ms"] < 2000


def test_a_stopped_redis_makes_it_not_ready_naming_the_broker(ready_settings, own_redis):
    port, process = own_redis
    ready_settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    assert ready()[0] == 200

    process.terminate()
    process.wait(timeout=10)

    status, body = ready()
    assert status == 503
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"]["status"] == "failing"
    assert "ConnectionError" in body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["status"] == "ok"
    assert APIClient().get("/api/v1/health/").status_code == 200  # liveness checks nothing


def test_a_stopped_registry_makes_it_not_ready_naming_the_registry(ready_settings, registry_factory):
    registry = registry_factory(name="stopped-registry")
    ready_settings.REGISTRY_NAMESPACE = f"{registry.host}/ready/threek8s"
    assert ready()[0] == 200

    registry.stop()

    started = time.monotonic()
    status, body = ready()
    assert status == 503
    assert body["failing"] == ["registry"]
    assert body["checks"]["registry"]["status"] == "failing"
    assert time.monotonic() - started < 10  # short timeouts, no retries: a probe answers quickly


def test_build_workers_check_their_engine(ready_settings, docker_host, tmp_path):
    ready_settings.HEALTH_CHECK_ENGINE = True
    ready_settings.DOCKER_HOST = docker_host
    status, body = ready()
    assert status == 200 and body["checks"]["engine"]["status"] == "ok"

    ready_settings.DOCKER_HOST = f"unix://{tmp_path}/no-engine.sock"
    status, body = ready()
    assert status == 503 and body["failing"] == ["engine"]
    with pytest.raises(SystemExit) as exited:
        call_command("ready")
    assert exited.value.code == 1


def test_build_workers_name_the_platforms_their_engine_runs(ready_settings, docker_host):
    # Given a build worker whose engine runs amd64 natively and arm64 through qemu (bin/setup)
    ready_settings.HEALTH_CHECK_ENGINE = True
    ready_settings.DOCKER_HOST = docker_host
    ready_settings.IMAGE_PLATFORMS = ["linux/amd64", "linux/arm64"]

    # When readiness is asked
    status, body = ready()

    # Then it names what the engine runs, natively and emulated, and its BuildKit CLI
    engine = body["checks"]["engine"]
    assert status == 200, body
    runnable = engine["platforms"]["native"] + engine["platforms"]["emulated"]
    assert {"linux/amd64", "linux/arm64"} <= set(runnable)
    assert engine["buildkit_cli"].startswith("/usr/bin/docker 20.10")


def test_a_platform_the_engine_cannot_run_makes_the_worker_not_ready_naming_the_fix(ready_settings, docker_host):
    ready_settings.HEALTH_CHECK_ENGINE = True
    ready_settings.DOCKER_HOST = docker_host
    ready_settings.IMAGE_PLATFORMS = ["linux/amd64", "linux/mips64le"]

    status, body = ready()

    assert status == 503 and body["failing"] == ["engine"]
    error = body["checks"]["engine"]["error"]
    assert "cannot run linux/mips64le" in error and "qemu-user-static" in error
    assert "linux/amd64" in body["checks"]["engine"]["platforms"]["native"]
