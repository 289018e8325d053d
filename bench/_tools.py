"""What benchmarks need from the machine: tools on PATH, scratch space, a fresh process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.figures import MissingTool

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"wrk": "wrk", "skopeo": "skopeo", "curl": "curl", "docker-registry": "docker-registry"}


def require(*tools: str) -> None:
    """Raise :class:`MissingTool` naming every tool of ``tools`` not on PATH and how to install it."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        packages = " ".join(PACKAGES.get(tool, tool) for tool in missing)
        raise MissingTool(f"needs {', '.join(missing)}: apt-get install {packages} (bin/setup installs them)")


def scratch_directory(needed_bytes: int) -> str | None:
    """/dev/shm when it has room for ``needed_bytes`` (and a margin), so that the disk does not hide
    what the client costs; else ``None`` (the temporary directory)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > needed_bytes * 1.2:
        return str(shm)
    return None


def in_fresh_process(function: Callable[..., None], *args: str) -> dict:
    """Run ``function(*args)`` (a module-level function that prints one JSON line last) in a new
    Python process, so that its peak RSS is its own; answers that JSON."""
    module = sys.modules[function.__module__]
    name = module.__spec__.name if module.__spec__ else f"bench.{Path(module.__file__ or '').stem}"
    code = f"import sys; from {name} import {function.__name__} as f; f(*sys.argv[1:])"
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"{name}.{function.__name__} failed in a fresh process:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
