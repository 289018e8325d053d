"""Run an external tool (syft, a vulnerability scanner) with a time limit that really stops it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence


def run_bounded(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` without stdin and capture stdout/stderr; kill it after ``timeout`` seconds.

    The tool runs in its own session, and a timeout kills the whole process group: a wrapper
    script (a pip entry point, ``sh -c``) that started the real tool as a child would otherwise
    keep the pipes open and the caller waiting after the wrapper itself was killed.
    Raises ``FileNotFoundError``/``PermissionError`` when ``argv[0]`` cannot be run and
    ``subprocess.TimeoutExpired`` after the kill.
    """
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(list(argv), process.returncode, stdout, stderr)
