"""Benchmark of releases.charts.render_index (Helm repository index.yaml generation).

Run: ``.venv/bin/python -m bench.chart_index [--quick]`` (a few seconds). Measures, in one run, the
time to render index.yaml for 1,000 and 5,000 versions of one chart (input shuffled, each entry
with one dependency), the two sizes interleaved over 9 rounds, and checks growth is linear: the
per-version cost at 5,000 versions must stay within 1.5x the cost at 1,000 (the medians; the
per-round ratios give the spread). For reference it also times PyYAML's dump of the same document
at 1,000 versions. Quick mode: 100 and 500 versions, one round. Serving cached bytes vs regenerating is measured by the
Django view's own benchmark, not here.
"""

from __future__ import annotations

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

from bench.figures import Figure, Goal, main, ratio_figure, rounds  # noqa: E402
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


def seconds(function) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


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


def run(quick: bool) -> list[Figure]:
    small, large = (100, 500) if quick else (1_000, 5_000)
    count = rounds(quick, 9)
    samples: dict[int, list[float]] = {small: [], large: []}
    entries = {size: make_entries(size) for size in samples}
    sizes = {size: len(render_index(entries[size], GENERATED)) for size in samples}  # also the warm-up
    for number in range(count):  # interleaved, so that both sizes meet the same machine state
        for size in (small, large) if number % 2 == 0 else (large, small):
            samples[size].append(seconds(lambda size=size: render_index(entries[size], GENERATED)) / size * 1e6)
    for size in samples:
        print(
            f"  {size:>5} versions: {statistics.median(samples[size]) * size / 1000:8.2f} ms median, "
            f"index.yaml {sizes[size] / 1024:7.1f} KiB"
        )
    document = as_document(make_entries(small))
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    reference = min(seconds(lambda: yaml.dump(document, Dumper=dumper, sort_keys=True)) for _ in range(3)) * 1000
    render = statistics.median(samples[small]) * small / 1000
    return [
        ratio_figure(
            f"index.yaml rendering, cost per version: {large:,} / {small:,} versions (linear)",
            samples[large],
            samples[small],
            "us",
            Goal("<=", LINEARITY_GOAL),
        ),
        Figure(
            f"render_index of {small:,} versions / PyYAML dump ({dumper.__name__}) of the same document",
            render,
            "ms",
            reference,
        ),
    ]


if __name__ == "__main__":
    main(run)
