"""The registry fixture itself: start-up failures must say why."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from releases.sandbox.registry import RegistryStartError, RunningRegistry, start_registry

pytestmark = pytest.mark.services


def test_oci_registry_fixture(oci_registry: RunningRegistry) -> None:
    assert oci_registry.url == f"http://{oci_registry.host}"
    assert oci_registry.host.startswith("127.0.0.1:")
    assert oci_registry.root.is_dir()
    assert httpx.get(f"{oci_registry.url}/v2/").status_code == 200
    assert "delete:\n    enabled: true" in (oci_registry.workdir / "config.yml").read_text()


def test_start_failure_includes_log_tail(tmp_path: Path) -> None:
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed")
    with pytest.raises(RegistryStartError, match=r"exited with code \d+ at start-up; log tail") as excinfo:
        start_registry(tmp_path, {"storage": {"nosuchdriver": {}}})
    assert "nosuchdriver" in str(excinfo.value)
