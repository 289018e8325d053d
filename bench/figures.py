"""What a benchmark reports, and its command line.

A benchmark module (listed in ``bench.BENCHMARKS``) exposes ``run(quick: bool) -> list[Figure]``
and ends with ``if __name__ == "__main__": main(run)``. ``quick`` means small sizes and one round:
the test suite runs it that way (``tests/bench/test_quick_modes.py``) to prove it still runs, never
to judge a figure. A full run measures each figure against a reference in the same run; where a
goal sits near the noise of these machines it takes at least :data:`EDGE_ROUNDS` rounds and reports
their spread.

``python -m bench.<name> [--quick] [--json PATH]`` prints the figures (one ``figure:`` line each)
and exits 0 in quick mode whatever the ratios; in a full run :data:`EXIT_MISSED` when a goal was
missed. A run that fails (a check, an exception) exits :data:`EXIT_FAILED`; a tool or service it
needs that is missing, :data:`EXIT_MISSING` (the tests skip on it, or fail in CI).
"""

from __future__ import annotations

import argparse
import json
import math
import operator
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

#: Rounds a full run takes where the goal is within the noise (the issue asks for >= 5).
EDGE_ROUNDS = 5
EXIT_MISSED = 1
EXIT_FAILED = 2
EXIT_MISSING = 3

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_SYMBOLS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "="}


class MissingTool(Exception):
    """A program, a privilege or a service the benchmark needs is not there; says how to get it."""


@dataclass(frozen=True)
class Goal:
    """What the figure must reach: ``measured <comparison> target`` (the ratio when the figure
    has a reference, else the value)."""

    comparison: str
    target: float
    unit: str = "x"

    def __post_init__(self) -> None:
        if self.comparison not in _COMPARISONS:
            raise ValueError(f"goal comparison {self.comparison!r}: use one of {', '.join(_COMPARISONS)}")

    def met(self, measured: float) -> bool:
        return _COMPARISONS[self.comparison](measured, self.target)

    def __str__(self) -> str:
        return f"{_SYMBOLS[self.comparison]} {number(self.target)}{self.unit}"


@dataclass(frozen=True)
class Figure:
    """One measured figure: ``value`` (in ``unit``) against ``reference`` measured in the same run
    (their ``ratio`` is what the goal judges), or alone (the goal judges the value).

    ``rounds`` holds what the goal judges, once per round (the per-round ratio; by default the one
    ratio, or value, measured); ``value`` and ``reference`` are medians over the rounds, and the
    goal judges the median of the rounds (:attr:`measured`). ``goal`` ``None`` means "for the record".
    """

    name: str
    value: float
    unit: str
    reference: float | None = None
    goal: Goal | None = None
    rounds: tuple[float, ...] = ()
    note: str = ""
    benchmark: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not math.isfinite(self.value) or (self.reference is not None and not self.reference > 0):
            raise ValueError(f"{self.name}: measured {self.value} against {self.reference}: nothing was measured")
        if not self.rounds:  # measured once
            object.__setattr__(self, "rounds", (self.value if self.reference is None else self.ratio,))

    @property
    def ratio(self) -> float | None:
        if self.reference is None:
            return None
        return self.value / self.reference

    @property
    def measured(self) -> float:
        """What the goal judges: the median of the rounds when there were several (paired rounds
        are steadier than the ratio of two medians), else the ratio, else the value."""
        if len(self.rounds) > 1:
            return statistics.median(self.rounds)
        ratio = self.ratio
        return self.value if ratio is None else ratio

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.goal.met(self.measured)

    @property
    def spread(self) -> tuple[float, float, float] | None:
        """(min, median, max) of the rounds, when there was more than one."""
        if len(self.rounds) < 2:
            return None
        return min(self.rounds), statistics.median(self.rounds), max(self.rounds)

    def line(self) -> str:
        """How the figure is printed: ``figure: <name>: <value> [/ <reference> = <ratio>x] ...``."""
        text = f"figure: {self.name}: {number(self.value)} {self.unit}"
        if self.reference is not None:
            text += f" / {number(self.reference)} {self.unit} = {number(self.measured)}x"
            if len(self.rounds) > 1:
                text += " (median of the rounds' ratios)"
        if self.goal is not None:
            text += f" (goal {self.goal}) {'met' if self.met else 'MISSED'}"
        else:
            text += " (for the record)"
        if self.spread:
            low, middle, high = self.spread
            text += f" [{len(self.rounds)} rounds: min {number(low)}, median {number(middle)}, max {number(high)}]"
        if self.note:
            text += f"; {self.note}"
        return text

    def as_json(self) -> dict:
        data = asdict(self)
        data["goal"] = None if self.goal is None else asdict(self.goal)
        data["rounds"] = list(self.rounds)
        data.update(ratio=self.ratio, measured=self.measured, met=self.met, spread=self.spread)
        return data

    @classmethod
    def from_json(cls, data: dict) -> Figure:
        goal = data.get("goal")
        return cls(
            name=data["name"],
            value=data["value"],
            unit=data["unit"],
            reference=data.get("reference"),
            goal=Goal(**goal) if goal else None,
            rounds=tuple(data.get("rounds") or ()),
            note=data.get("note", ""),
            benchmark=data.get("benchmark", ""),
        )


def ratio_figure(
    name: str,
    values: Sequence[float],
    references: Sequence[float],
    unit: str,
    goal: Goal | None = None,
    note: str = "",
) -> Figure:
    """A figure over paired rounds: medians of ``values`` and ``references``, the ratio per round."""
    if len(values) != len(references) or not values:
        raise ValueError(f"{name}: {len(values)} values for {len(references)} references")
    return Figure(
        name,
        statistics.median(values),
        unit,
        statistics.median(references),
        goal,
        tuple(v / r for v, r in zip(values, references, strict=True)),
        note,
    )


def number(value: float | None) -> str:
    """A figure for people: three significant digits or so, thousands separated."""
    if value is None:
        return "—"
    if math.isinf(value) or math.isnan(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 100 or value == int(value):
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:,.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def rounds(quick: bool, full: int) -> int:
    """One round in quick mode, ``full`` otherwise."""
    return 1 if quick else full


def main(run: Callable[[bool], list[Figure]], argv: Sequence[str] | None = None) -> None:
    """The command line of one benchmark module: run it, print its figures, exit with its verdict."""
    from bench import _database

    module = sys.modules[run.__module__]
    # ``python -m bench.oci_push`` runs it as ``__main__``; its spec still names it.
    name = (module.__spec__.name if module.__spec__ else Path(module.__file__ or "").stem).rsplit(".", 1)[-1]
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.{name}", description=(module.__doc__ or name).splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one round: proves it runs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file (JSON)")
    _database.add_arguments(parser)
    args = parser.parse_args(argv)
    _database.configure(args)
    try:
        figures = [replace(figure, benchmark=name) for figure in run(args.quick)]
    except MissingTool as missing:
        print(f"{name}: cannot run: {missing}", file=sys.stderr)
        sys.exit(EXIT_MISSING)
    except SystemExit as stop:  # a check that stopped the run, saying why
        if isinstance(stop.code, int | None):
            raise
        print(f"{name}: failed: {stop.code}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    except Exception:
        traceback.print_exc()
        print(f"{name}: failed", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    if not figures:
        print(f"{name}: measured no figure", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    for figure in figures:
        print(figure.line())
    if args.json:
        args.json.write_text(json.dumps([figure.as_json() for figure in figures], indent=2) + "\n")
    missed = [figure.name for figure in figures if figure.met is False]
    sys.exit(EXIT_MISSED if missed and not args.quick else 0)


def mean_seconds(repeat: int, call: Callable[[], object]) -> float:
    """Mean wall clock of ``call`` over ``repeat`` calls, after one warm-up call."""
    call()
    started = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - started) / repeat
