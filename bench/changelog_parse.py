"""Benchmark of releases.changelog on a large synthetic Release Please CHANGELOG.md.

Run: ``.venv/bin/python -m bench.changelog_parse [--quick]`` (a few seconds). Measures, best of 3
runs: split_changelog on the whole file, parse_release_notes on one release, render_html on one
release, and merge_between over the whole history. Goal: a whole 2000-release changelog (about 2 MB)
splits in under 2 s. Quick mode: 100 releases, one run.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.figures import Figure, Goal, main  # noqa: E402
from releases.changelog import merge_between, parse_release_notes, render_html, split_changelog  # noqa: E402

REPO = "https://github.com/stianfro/threek8s"
SECTIONS = ["Features", "Bug Fixes", "Performance Improvements", "Code Refactoring", "Miscellaneous Chores"]
SCOPES = [None, "api", "frontend", "backend", "helm", "deps"]


def synthetic_changelog(releases: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    versions = [f"1.{minor}.0" for minor in range(releases)][::-1]
    out = ["# Changelog", ""]
    pr = releases * 10
    for index, version in enumerate(versions):
        previous = versions[index + 1] if index + 1 < len(versions) else None
        if previous:
            out.append(f"## [{version}]({REPO}/compare/v{previous}...v{version}) (2026-11-20)")
        else:
            out.append(f"## {version} (2026-10-01)")
        out += ["", ""]
        if rng.random() < 0.1:
            out += ["### ⚠ BREAKING CHANGES", "", "* **api:** the v0 endpoints are removed.", "Clients must move.", ""]
        for title in rng.sample(SECTIONS, rng.randint(1, 3)):
            out += [f"### {title}", ""]
            for _ in range(rng.randint(1, 6)):
                pr -= 1
                sha = f"{rng.getrandbits(160):040x}"
                scope = rng.choice(SCOPES)
                prefix = f"**{scope}:** " if scope else ""
                out.append(
                    f"* {prefix}change number {pr} ([#{pr}]({REPO}/issues/{pr})) ([{sha[:7]}]({REPO}/commit/{sha}))"
                )
                if rng.random() < 0.2:
                    out.append("  with a second line of explanation")
            out.append("")
    return "\n".join(out)


def best_of(repeat: int, func: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        timings.append(time.perf_counter() - started)
    return min(timings)


def run(quick: bool) -> list[Figure]:
    releases, repeat = (100, 1) if quick else (2000, 3)
    text = synthetic_changelog(releases)
    notes = split_changelog(text)
    one = notes[len(notes) // 2].markdown
    entries = sum(1 for r in notes for _ in r.entries)
    print(f"changelog: {len(text) / 1e6:.2f} MB, {len(notes)} releases, {entries} entries")

    split_ms = best_of(repeat, lambda: split_changelog(text)) * 1000
    parse_us = best_of(repeat, lambda: parse_release_notes(one)) * 1e6
    render_us = best_of(repeat, lambda: render_html(one)) * 1e6
    merge_ms = best_of(repeat, lambda: merge_between(notes, None, None)) * 1000
    size = f"{len(text) / 1e6:.2f} MB, {releases:,} releases"
    return [
        Figure(
            f"split_changelog of a whole Release Please CHANGELOG.md ({size}), best of {repeat}",
            split_ms,
            "ms",
            goal=Goal("<", releases, " ms"),  # 2 s for 2,000 releases
            note=f"{len(text) / split_ms / 1e3:.1f} MB/s",
        ),
        Figure("parse_release_notes, one release", parse_us, "us"),
        Figure("render_html, one release", render_us, "us"),
        Figure(f"merge_between over {releases:,} releases", merge_ms, "ms"),
    ]


if __name__ == "__main__":
    main(run)
