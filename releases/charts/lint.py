"""``helm lint --strict``: Helm's own checks of a chart, as a list of findings.

Strict mode fails on warnings too, so every ``[WARNING]`` and ``[ERROR]`` helm prints is a
finding (with its indented continuation lines); ``[INFO]`` lines (an icon is recommended...) are
advice and are left out. Paths of the worker's checkout are shown as ``chart``.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from releases.charts.dependencies import helm_environment

LINT_TIMEOUT = 120.0
FINDING_LIMIT = 1000
_SEVERITY = re.compile(r"^\[(INFO|WARNING|ERROR)\]\s*(.*)$")


def _shown(text: str, chart_dir: Path) -> str:
    text = text.replace(str(chart_dir.resolve()), "chart").replace(str(chart_dir), "chart")
    return text if len(text) <= FINDING_LIMIT else text[:FINDING_LIMIT] + "..."


def lint_findings(output: str, chart_dir: Path) -> list[str]:
    """The ``[WARNING]``/``[ERROR]`` findings of ``helm lint`` output, each on one line."""
    findings: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in output.splitlines():
        match = _SEVERITY.match(line.strip())
        if match:
            current = [match.group(2)] if match.group(1) != "INFO" else None
            if current is not None:
                findings.append((match.group(1), current))
        elif current is not None and line[:1].isspace() and line.strip():
            current.append(line.strip())
        else:
            current = None
    return [f"helm lint: [{severity}] {_shown(' '.join(parts), chart_dir)}" for severity, parts in findings]


def lint_chart(
    helm_bin: str | os.PathLike[str],
    chart_dir: Path,
    *,
    kube_version: str,
    helm_home: Path,
    timeout: float = LINT_TIMEOUT,
) -> list[str]:
    """Run ``helm lint --strict`` on ``chart_dir``; return its findings (empty: the chart passes).

    A lint that fails without a finding helm labelled is reported with helm's own words.
    """
    chart_dir = Path(chart_dir)
    command = [os.fspath(helm_bin), "lint", "--strict", "--kube-version", kube_version, str(chart_dir)]
    try:
        completed = subprocess.run(
            command,
            env=helm_environment(Path(helm_home)),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return [f"helm lint timed out after {timeout:.0f}s"]
    except OSError as error:
        return [f"cannot run {command[0]}: {error.strerror}; install helm (bin/install-helm) or set HELM_BIN"]
    findings = lint_findings(completed.stdout + "\n" + completed.stderr, chart_dir)
    if completed.returncode != 0 and not findings:
        output = _shown((completed.stderr or completed.stdout).strip(), chart_dir)
        findings.append(f"helm lint --strict failed: {output or 'no output'}")
    return findings
