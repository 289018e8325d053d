"""Benchmark of releases.charts.render_index (Helm repository index.yaml generation).

Run: ``.venv/bin/python bench/chart_index.py`` (a few seconds). Measures, in one run, the time
to render index.yaml for 100, 1,000 and 5,000 versions of one chart (input shuffled, each
entry with one dependency), best and median of several rounds, and checks growth is linear:
the per-version cost at 5,000 versions must stay within 1.5x the cost at 1,000
(goal; exit status 1 when missed). For reference it also times PyYAML's ``safe_dump`` of the
same document at 1,000 versions. Serving cached bytes vs regenerating is measured by the
Django view's own benchmark, not here.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from releases.charts import IndexEntry, render_index  # noqa: E402

SIZES = (100, 1_000, 5_000)
LINEARITY_GOAL = 1.5
GENERATED = datetime(2025, 1, 1, tzinfo=UTC)


def make_entries(count: int, seed: int = 1) -> list[IndexEntry]:
    entries = []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for index in range(count):
        major, minor, patch = 1 + index // 1000, (index // 10) % 100, index % 10
        version = f"{major}.{minor}.{patch}"
        entries.append(
            IndexEntry(
                name="threek8s",
                version=version,
                app_version=version,
                description="The threek8s app (frontend + backend) on Kubernetes.",
                digest=hashlib.sha256(version.encode()).hexdigest(),
                created=start + timedelta(hours=index),
                urls=[f"https://charts.example.com/threek8s-{version}.tgz"],
                dependencies=[{"name": "redis", "version": "19.x", "repository": "oci://registry.example/charts"}],
            )
        )
    random.Random(seed).shuffle(entries)
    return entries


def time_call(function, rounds: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(best, median) seconds over ``rounds`` calls, after one warm-up call."""
    function()
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings), statistics.median(timings)


def as_document(entries: list[IndexEntry]) -> dict:
    return {
        "apiVersion": "v1",
        "entries": {
            "threek8s": [
                {
                    "apiVersion": e.api_version,
                    "appVersion": e.app_version,
                    "created": e.created.isoformat(),
                    "dependencies": e.dependencies,
                    "description": e.description,
                    "digest": e.digest,
                    "name": e.name,
                    "urls": e.urls,
                    "version": e.version,
                }
                for e in entries
            ]
        },
        "generated": GENERATED.isoformat(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    print(f"render_index: best / median of {args.rounds} rounds (after a warm-up)")
    per_version: dict[int, float] = {}
    for size in SIZES:
        entries = make_entries(size)
        data = render_index(entries, GENERATED)
        best, median = time_call(lambda entries=entries: render_index(entries, GENERATED), args.rounds)
        per_version[size] = best / size
        print(
            f"  {size:>5} versions: {best * 1000:8.2f} ms best, {median * 1000:8.2f} ms median, "
            f"{best / size * 1e6:6.2f} us/version, index.yaml {len(data) / 1024:7.1f} KiB"
        )
    ratio = per_version[5_000] / per_version[1_000]
    print(f"  per-version cost 5000 vs 1000: {ratio:.2f}x (goal <= {LINEARITY_GOAL}x: linear)")

    document = as_document(make_entries(1_000))
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    best, _ = time_call(lambda: yaml.dump(document, Dumper=dumper, sort_keys=True).encode(), 3)
    print(f"  reference: PyYAML dump ({dumper.__name__}) of the same 1000 versions: {best * 1000:.2f} ms")

    ok = ratio <= LINEARITY_GOAL
    print("OK" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
