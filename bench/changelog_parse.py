"""Benchmark of releases.changelog on a large synthetic Release Please CHANGELOG.md.

Run: ``.venv/bin/python bench/changelog_parse.py [--releases 2000]`` (a few seconds). Measures, best of
``--repeat`` runs: split_changelog on the whole file, parse_release_notes on one release, render_html on one
release, and merge_between over the whole history. Goal: a whole 2000-release changelog (about 2 MB) splits
in under 2 s; exit status 1 when it does not.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    text = synthetic_changelog(args.releases)
    releases = split_changelog(text)
    one = releases[len(releases) // 2].markdown
    entries = sum(1 for r in releases for _ in r.entries)
    print(f"changelog: {len(text) / 1e6:.2f} MB, {len(releases)} releases, {entries} entries")

    split_s = best_of(args.repeat, lambda: split_changelog(text))
    parse_s = best_of(args.repeat, lambda: parse_release_notes(one))
    render_s = best_of(args.repeat, lambda: render_html(one))
    merge_s = best_of(args.repeat, lambda: merge_between(releases, None, None))
    print(f"split_changelog (whole file):   {split_s * 1000:9.1f} ms  ({len(text) / split_s / 1e6:.1f} MB/s)")
    print(f"parse_release_notes (1 release): {parse_s * 1e6:8.1f} us")
    print(f"render_html (1 release):         {render_s * 1e6:8.1f} us")
    print(f"merge_between (all releases):   {merge_s * 1000:9.1f} ms")
    goal = 2.0 * args.releases / 2000
    ok = split_s < goal
    print(f"goal split < {goal:.2f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
