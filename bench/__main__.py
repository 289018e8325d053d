"""Every benchmark, one after another, each in a process of its own: ``bin/bench [--quick] [name ...]``.

A full run (the default) writes ``bench/results/<date>.json`` and ``.md`` (``bench.results``);
``python -m bench.readme`` then puts the table into README.md. Run it on a quiet machine: the load
average at the start is recorded beside the figures, and a warning is printed when the machine is
already busy. ``--quick`` runs the small sizes (what the test suite does) and writes a results file
only with ``--results-dir``. Exit status: 0 when everything ran (and, in a full run, met its
goals), 1 when a goal was missed, 2 when a benchmark failed or could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

from bench import BENCHMARKS, _database, results
from bench.figures import EXIT_MISSED, EXIT_MISSING, Figure

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark(name: str, quick: bool, options: list[str]) -> results.BenchmarkRun:
    """``python -m bench.<name>`` with its output passed through; its figures, or why there are none."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        figures_path = Path(tmp) / "figures.json"
        command = [sys.executable, "-u", "-m", f"bench.{name}", "--json", str(figures_path), *options]
        command += ["--quick"] if quick else []
        print(f"== {name}{' (quick)' if quick else ''}", flush=True)
        started = time.perf_counter()
        tail: deque[str] = deque(maxlen=20)
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            tail.append(line.rstrip())
        code = process.wait()
        seconds = time.perf_counter() - started
        if code == EXIT_MISSING:
            return results.BenchmarkRun(name, "missing", seconds, error=tail[-1] if tail else "")
        if code not in (0, EXIT_MISSED) or not figures_path.exists():
            return results.BenchmarkRun(name, "failed", seconds, error=f"exit status {code}: " + " / ".join(tail))
        figures = [Figure.from_json(data) for data in json.loads(figures_path.read_text())]
        return results.BenchmarkRun(name, "ran", seconds, figures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="name", help=f"default: all of {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (what the tests run)")
    parser.add_argument("--results-dir", type=Path, help=f"where the results go (default {results.RESULTS})")
    _database.add_arguments(parser)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}; they are: {', '.join(BENCHMARKS)}")
    _database.configure(args)
    names = [name for name in BENCHMARKS if name in args.names] if args.names else BENCHMARKS

    started = datetime.now(UTC)
    host = results.machine()
    busy = host["load_at_start"][0]
    if not args.quick and busy > (host["cpus"] or 1) / 2:
        print(f"warning: load average {busy} on {host['cpus']} CPUs: the figures will carry the noise", flush=True)
    runs = [run_benchmark(name, args.quick, _database.arguments()) for name in names]
    document = {
        "stem": results.stem(started, complete=names == BENCHMARKS),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": host | {"load_at_end": [round(load, 2) for load in os.getloadavg()]},
        "commit": results.commit(),
        "benchmarks": [run.as_json() for run in runs],
    }
    print()
    print(results.markdown(document))
    if args.results_dir or not args.quick:
        for path in results.write(document, args.results_dir or results.RESULTS):
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if any(run.status != "ran" for run in runs):
        return 2
    missed = any(figure.met is False for run in runs for figure in run.figures)
    return EXIT_MISSED if missed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
