"""check_environment: the chart's env-var convention (see releases/charts/environment.py)."""

from __future__ import annotations

from typing import Any

import pytest

from releases.charts import EnvVarSpec, check_environment, load_chart
from tests.charts.conftest import EXAMPLE_CHART

LOG_LEVEL = EnvVarSpec("LOG_LEVEL", required=False, secret=False, default_value="info", scope="both")
DATABASE_URL = EnvVarSpec("DATABASE_URL", required=True, secret=True, scope="backend")
API_BASE = EnvVarSpec("API_BASE", required=True, secret=False, scope="frontend")
SESSION_KEY = EnvVarSpec("SESSION_KEY", required=True, secret=True, scope="both")


def values(frontend: dict[str, Any] | None = None, backend: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"frontend": frontend or {}, "backend": backend or {}}


# (id, values, variables, expected problem fragments in order)
CASES: list[tuple[str, dict[str, Any], list[EnvVarSpec], list[str]]] = [
    ("nothing-declared", {}, [], []),
    ("optional-not-set", values(), [LOG_LEVEL], []),
    ("required-set", values(frontend={"env": {"API_BASE": "https://api"}}), [API_BASE], []),
    ("required-listed", values(frontend={"requiredEnv": ["API_BASE"]}), [API_BASE], []),
    (
        "required-missing",
        values(),
        [API_BASE],
        ["frontend.env.API_BASE: required variable API_BASE is neither set in values.yaml nor listed in"],
    ),
    (
        "required-empty-placeholder",
        values(frontend={"env": {"API_BASE": ""}}),
        [API_BASE],
        ["frontend.env.API_BASE: required variable API_BASE"],
    ),
    (
        "required-in-wrong-component",
        values(backend={"env": {"API_BASE": "x"}}),
        [API_BASE],
        ["frontend.env.API_BASE: required variable"],
    ),
    (
        "both-scope-needs-both",
        values(frontend={"requiredEnv": ["SESSION_KEY"]}),
        [SESSION_KEY],
        ["backend.env.SESSION_KEY: required variable SESSION_KEY"],
    ),
    ("secret-listed-as-required", values(backend={"requiredEnv": ["DATABASE_URL"]}), [DATABASE_URL], []),
    (
        "secret-with-default",
        values(backend={"env": {"DATABASE_URL": "postgres://u:p@db/app"}}),
        [DATABASE_URL],
        ["backend.env.DATABASE_URL: secret variable DATABASE_URL has a default value in values.yaml"],
    ),
    (
        "secret-with-default-in-other-component",
        values(frontend={"env": {"DATABASE_URL": "x"}}, backend={"requiredEnv": ["DATABASE_URL"]}),
        [DATABASE_URL],
        ["frontend.env.DATABASE_URL: secret variable"],
    ),
    (
        "secret-empty-placeholder-listed",
        values(backend={"env": {"DATABASE_URL": ""}, "requiredEnv": ["DATABASE_URL"]}),
        [DATABASE_URL],
        [],
    ),
    (
        "names-not-upper-snake",
        values(
            frontend={"env": {"logLevel": "x", "LOG__LEVEL": "y", "OK_1": "z"}}, backend={"requiredEnv": ["db-url"]}
        ),
        [],
        [
            "frontend.env.logLevel: 'logLevel' is not UPPER_SNAKE_CASE",
            "frontend.env.LOG__LEVEL",
            "backend.requiredEnv: 'db-url'",
        ],
    ),
    ("env-not-mapping", values(backend={"env": ["A=1"]}), [], ["backend.env: must be a mapping NAME: value"]),
    ("required-not-list", values(backend={"requiredEnv": "A"}), [], ["backend.requiredEnv: must be a list"]),
    ("component-not-mapping", {"frontend": "x"}, [], ["frontend: must be a mapping"]),
    ("unknown-scope", values(), [EnvVarSpec("X", required=True, scope="worker")], ["X: unknown scope 'worker'"]),
    (
        "several-problems-at-once",
        values(frontend={"env": {"bad-name": "1"}}, backend={"env": {"DATABASE_URL": "secret!"}}),
        [DATABASE_URL, API_BASE],
        ["frontend.env.bad-name", "backend.env.DATABASE_URL: secret variable", "frontend.env.API_BASE: required"],
    ),
]


@pytest.mark.parametrize(("chart_values", "variables", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_environment_checks(chart_values: dict[str, Any], variables: list[EnvVarSpec], expected: list[str]) -> None:
    problems = check_environment(chart_values, variables)
    assert len(problems) == len(expected), problems
    for problem, fragment in zip(problems, expected, strict=True):
        assert fragment in problem


def test_example_chart_values_follow_the_convention() -> None:
    chart = load_chart(EXAMPLE_CHART, expected_name="threek8s", expected_app_version="1.0.0")
    assert check_environment(chart.values, [LOG_LEVEL]) == []
    # The example's defaults do not cover a required backend secret until it is listed in requiredEnv.
    assert len(check_environment(chart.values, [DATABASE_URL])) == 1
