"""Helpers shared by the chart tests: a writable copy of the example chart, running helm."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CHART = REPO_ROOT / "examples" / "chart"


def copy_chart(destination: Path, source: Path = EXAMPLE_CHART) -> Path:
    """Copy a chart directory (fresh mtimes) to ``destination``; return it."""
    shutil.copytree(source, destination)
    return destination


def run_helm(
    helm_bin: str, env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run helm; fail the test with helm's output when it exits non-zero."""
    completed = subprocess.run(
        [helm_bin, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if completed.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed ({completed.returncode}):\n{completed.stderr}\n{completed.stdout}")
    return completed


@pytest.fixture
def example_chart(tmp_path: Path) -> Path:
    """A writable copy of examples/chart (tests may edit it)."""
    return copy_chart(tmp_path / "threek8s")
