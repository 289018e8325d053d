"""A results file of ``python -m bench``: what ran, where, at which commit, and every figure.

``bench/results/<date>.json`` (a run of every benchmark; a run of some is ``<date>-<time>-partial``)
and the same as a markdown table beside it (``.md``), which ``python -m bench.readme`` puts into
README.md.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.figures import Figure, number

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class BenchmarkRun:
    """One benchmark's part of a run: ``status`` ``ran``, ``failed`` or ``missing`` (a tool or
    service it needs was not there), with ``error`` saying why."""

    name: str
    status: str
    seconds: float
    figures: list[Figure] = field(default_factory=list)
    error: str = ""

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "figures": [figure.as_json() for figure in self.figures],
        }

    @classmethod
    def from_json(cls, data: dict) -> BenchmarkRun:
        figures = [Figure.from_json(figure) for figure in data["figures"]]
        return cls(data["name"], data["status"], data["seconds"], figures, data.get("error", ""))


def machine() -> dict:
    """What the figures were measured on, and how busy it was (load average) when the run began."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = names[0] if names else ""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return {
        "hostname": socket.gethostname(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_at_start": [round(load, 2) for load in os.getloadavg()],
    }


def commit() -> dict:
    """The commit measured, and whether the work tree had changes besides."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)
        return result.stdout.strip()

    return {
        "sha": git("rev-parse", "HEAD"),
        "subject": git("log", "-1", "--format=%s"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def write(document: dict, directory: Path = RESULTS) -> tuple[Path, Path]:
    """``document`` as ``<stem>.json`` and ``<stem>.md`` in ``directory``; answers both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{document['stem']}.json"
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    markdown_path = json_path.with_suffix(".md")
    markdown_path.write_text(markdown(document))
    return json_path, markdown_path


def stem(started: datetime, complete: bool) -> str:
    return f"{started:%Y-%m-%d}" if complete else f"{started:%Y-%m-%d-%H%M}-partial"


def markdown(document: dict) -> str:
    """The run's header (when, where, which commit) and its table, one row per figure."""
    host, sha = document["machine"], document["commit"]
    load = ", ".join(str(value) for value in host["load_at_start"])
    dirty = " (with uncommitted changes)" if sha["dirty"] else ""
    mode = "quick mode (small sizes, one round: not figures to quote), " if document["quick"] else ""
    lines = [
        f"Measured {document['started'][:16].replace('T', ' ')} UTC, {mode}`python -m bench` on "
        f"{host['hostname']} ({host['cpus']} CPUs, {host['cpu_model'] or 'unknown CPU'}, {host['memory_gib']} GiB; "
        f"load average {load} at the start), commit `{sha['sha'][:10]}`{dirty}. The goal judges the ratio to the "
        "reference measured in the same run (or the value, where there is none); over several rounds, the median "
        "of the rounds' ratios, with their spread.",
        "",
        "| benchmark | figure | measured | reference | ratio | goal | verdict | rounds: min / median / max |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for data in document["benchmarks"]:
        run = BenchmarkRun.from_json(data)
        label = f"`bench/{run.name}.py`"
        if run.status != "ran":
            lines.append(f"| {label} | did not run ({run.status}): {cell(run.error)} | | | | | | |")
            continue
        for figure in run.figures:
            lines.append(row(label, figure))
            label = ""
    return "\n".join(lines) + "\n"


def row(label: str, figure: Figure) -> str:
    what = figure.name + (f" ({figure.note})" if figure.note else "")
    measured = f"{number(figure.value)} {figure.unit}"
    reference = "—" if figure.reference is None else f"{number(figure.reference)} {figure.unit}"
    ratio = "—" if figure.reference is None else f"**{number(figure.measured)}x**"
    if figure.reference is None:
        measured = f"**{measured}**"
    goal = "for the record" if figure.goal is None else str(figure.goal)
    verdict = "" if figure.met is None else ("met" if figure.met else "**missed**")
    spread = "1"
    if figure.spread:
        unit = "x" if figure.reference is not None else f" {figure.unit}"
        spread = f"{len(figure.rounds)}: " + " / ".join(number(value) for value in figure.spread) + unit
    cells = [label, cell(what), measured, reference, ratio, goal, verdict, spread]
    return "| " + " | ".join(cells) + " |"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
