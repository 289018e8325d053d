"""Benchmarks: each one a ratio against a reference measured in the same run, never a timed test.

Adding a benchmark: write ``bench/<name>.py`` with

- a module docstring (first line: what it measures; then how, the goals, and its quick mode);
- ``run(quick: bool) -> list[Figure]`` (``bench.figures``): full sizes measure, ``quick`` (small
  sizes, one round) only proves it still runs. A goal within the noise of these 2-core machines
  takes at least ``EDGE_ROUNDS`` rounds in a full run and reports them (``ratio_figure``);
- a database of its own through ``bench._database.use_database("<name>", redis_db=N)`` when it
  sets Django up (inside ``run``, never at import); rows through ``bench._seed`` or the use cases,
  under the rules the product enforces (the immutability triggers included); a missing tool
  raises ``bench.figures.MissingTool`` (``bench._tools.require``);
- ``if __name__ == "__main__": main(run)`` at its end;

then add its name to :data:`BENCHMARKS` below (one line). ``bin/bench`` (``python -m bench``)
runs them all at full size, one after another, and writes ``bench/results/<date>.json`` and
``.md``; ``python -m bench.readme`` puts that table into README.md; the test suite runs every
quick mode (``tests/bench/test_quick_modes.py``).
"""

#: Every benchmark, in the order ``python -m bench`` runs them: the quick ones first.
BENCHMARKS = [
    "changelog_parse",
    "chart_index",
    "chart_index_serving",
    "changelog_range",
    "admin_overview",
    "api_list",
    "admission",
    "oci_push",
    "audit_tags",
    "signing",
    "audit_sharded",
    "publish_signing",
    "parallel_builds",
    "reproducible_export",
    "real_builds",
]
