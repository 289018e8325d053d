"""How a figure is judged and reported, and how README's table is rewritten (plain Python)."""

from __future__ import annotations

import pytest

from bench.figures import Figure, Goal, ratio_figure
from bench.readme import BEGIN, END, rewrite
from bench.results import BenchmarkRun, markdown


def test_a_goal_over_several_rounds_judges_the_median_of_their_ratios():
    # the ratio of the medians (1,000 / 1,200 = 0.83x) would pass; the paired rounds say 0.78x
    figure = ratio_figure("audit / wrk", [780, 1000, 1200], [1000, 1300, 1200], "tags/s", Goal(">=", 0.8))

    assert (figure.value, figure.reference) == (1000, 1200)
    assert figure.measured == pytest.approx(0.78)
    assert figure.met is False
    assert figure.spread == pytest.approx((1000 / 1300, 0.78, 1.0))
    assert figure.line() == (
        "figure: audit / wrk: 1,000 tags/s / 1,200 tags/s = 0.78x (median of the rounds' ratios) (goal ≥ 0.8x) "
        "MISSED [3 rounds: min 0.769, median 0.78, max 1]"
    )


def test_a_figure_without_reference_judges_its_value():
    figure = Figure("overview", 69.5, "ms", goal=Goal("<", 100, " ms"), rounds=(69.5,))

    assert figure.ratio is None
    assert figure.met is True
    assert figure.line() == "figure: overview: 69.5 ms (goal < 100 ms) met"


def test_a_figure_survives_the_results_file():
    figure = ratio_figure("push", [160, 150], [150, 150], "MiB/s", Goal(">=", 0.95), note="5 rounds")
    figure = Figure(**{**figure.__dict__, "benchmark": "oci_push"})

    assert Figure.from_json(figure.as_json()) == figure


def test_an_unknown_goal_comparison_is_refused():
    with pytest.raises(ValueError, match="use one of"):
        Goal("=>", 1)


def document(*runs: BenchmarkRun) -> dict:
    return {
        "stem": "2026-12-07",
        "started": "2026-12-07T02:00:00+00:00",
        "quick": False,
        "machine": {"hostname": "dev", "cpus": 2, "cpu_model": "EPYC", "memory_gib": 7.8, "load_at_start": [0.1]},
        "commit": {"sha": "abcdef1234567", "subject": "x", "dirty": False},
        "benchmarks": [run.as_json() for run in runs],
    }


def test_the_table_has_a_row_per_figure_and_says_what_did_not_run():
    ran = BenchmarkRun(
        "audit_sharded",
        "ran",
        200.0,
        [
            ratio_figure("sharded / wrk", [790, 810, 800], [1000, 1000, 1000], "tags/s", Goal(">=", 0.8)),
            Figure("peak RSS growth", 2.8, "MiB", goal=Goal("<", 8, " MiB"), rounds=(2.8,)),
        ],
    )
    failed = BenchmarkRun("api_list", "failed", 3.0, error="exit status 1: IntegrityError | insert refused")

    table = markdown(document(ran, failed))

    assert "commit `abcdef1234`" in table and "2 CPUs, EPYC" in table
    rows = [line for line in table.splitlines() if line.startswith("| `bench/") or line.startswith("|  |")]
    assert rows[0].startswith("| `bench/audit_sharded.py` | sharded / wrk | 800 tags/s | 1,000 tags/s | **0.8x** |")
    assert rows[0].endswith("| ≥ 0.8x | met | 3: 0.79 / 0.8 / 0.81x |")
    assert rows[1] == "|  | peak RSS growth | **2.80 MiB** | — | — | < 8 MiB | met | 1 |"
    assert rows[
        2
    ] == "| `bench/api_list.py` | did not run (failed): exit status 1: IntegrityError \\| insert refused |" + (" |" * 6)


def test_readme_is_rewritten_between_its_markers_only():
    readme = f"# Title\n\nintro\n{BEGIN}\nold table\n{END}\n\nafter\n"

    assert rewrite(readme, "new table\n") == f"# Title\n\nintro\n{BEGIN}\nnew table\n{END}\n\nafter\n"
    with pytest.raises(SystemExit, match="needs the markers"):
        rewrite("# no markers\n", "table")
