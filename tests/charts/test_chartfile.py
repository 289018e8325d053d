"""load_chart: every problem of a broken chart is listed, each saying what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from releases.charts import ChartDependency, ChartLimits, load_chart
from releases.charts.chartfile import MAX_VALUES_BYTES
from tests.charts.conftest import EXAMPLE_CHART

GOOD_CHART_YAML = 'apiVersion: v2\nname: threek8s\ndescription: demo\nversion: 1.0.0\nappVersion: "1.0.0"\n'
SCHEMA = {
    "type": "object",
    "properties": {
        "replicas": {"type": "integer", "minimum": 1},
        "image": {"type": "object", "properties": {"registry": {"type": "string"}}, "required": ["registry"]},
    },
}


def write_chart(
    root: Path,
    *,
    chart_yaml: str | None = GOOD_CHART_YAML,
    values: str | None = "replicas: 1\nimage:\n  registry: ghcr.io/x\n",
    schema: dict | str | None = None,
    templates: dict[str, str] | None = None,
) -> Path:
    root.mkdir(parents=True)
    if chart_yaml is not None:
        (root / "Chart.yaml").write_text(chart_yaml)
    if values is not None:
        (root / "values.yaml").write_text(values)
    if schema is not None:
        (root / "values.schema.json").write_text(schema if isinstance(schema, str) else json.dumps(schema))
    templates = {"deployment.yaml": "kind: Deployment\n"} if templates is None else templates
    for name, text in templates.items():
        path = root / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_example_chart_loads_clean() -> None:
    chart = load_chart(EXAMPLE_CHART, expected_name="threek8s", expected_app_version="1.0.0")
    assert chart.problems == []
    assert chart.ok
    assert (chart.name, chart.version, chart.app_version, chart.api_version) == ("threek8s", "1.0.0", "1.0.0", "v2")
    assert chart.description
    assert chart.templates == [
        "_helpers.tpl",
        "backend-deployment.yaml",
        "backend-service.yaml",
        "frontend-deployment.yaml",
        "frontend-service.yaml",
    ]
    assert chart.values["image"]["registry"]
    assert chart.schema is not None


# (case id, write_chart kwargs, substrings: one per expected problem, in order)
BROKEN = [
    ("invalid-chart-yaml", {"chart_yaml": "apiVersion: v2\nname: [threek8s\n"}, ["Chart.yaml: invalid YAML at line"]),
    ("chart-yaml-missing", {"chart_yaml": None}, ["Chart.yaml: not found"]),
    ("chart-yaml-not-mapping", {"chart_yaml": "- a\n- b\n"}, ["Chart.yaml: must be a YAML mapping"]),
    ("api-v1", {"chart_yaml": GOOD_CHART_YAML.replace("v2", "v1")}, ["apiVersion is 'v1'; set apiVersion: v2"]),
    ("wrong-name", {"chart_yaml": GOOD_CHART_YAML.replace("threek8s", "other")}, ["name is 'other', expected"]),
    (
        "non-semver-version",
        {"chart_yaml": GOOD_CHART_YAML.replace("version: 1.0.0", "version: one")},
        ["version 'one' is not a valid semantic version"],
    ),
    (
        "float-version",
        {"chart_yaml": GOOD_CHART_YAML.replace("version: 1.0.0", "version: 1.0")},
        ["version is 1.0 (float), not a string; quote it"],
    ),
    (
        "app-version-mismatch",
        {"chart_yaml": GOOD_CHART_YAML.replace('appVersion: "1.0.0"', 'appVersion: "0.9.0"')},
        ["appVersion is '0.9.0' but this release is '1.0.0'"],
    ),
    (
        "app-version-missing",
        {"chart_yaml": GOOD_CHART_YAML.replace('appVersion: "1.0.0"\n', "")},
        ["appVersion is missing"],
    ),
    ("values-invalid-yaml", {"values": "replicas: [1\n"}, ["values.yaml: invalid YAML at line 2"]),
    ("values-not-mapping", {"values": "- 1\n"}, ["values.yaml: must be a YAML mapping"]),
    ("values-missing", {"values": None}, ["values.yaml: not found"]),
    (
        "schema-violation",
        {"schema": SCHEMA, "values": "replicas: zero\nimage: {}\n"},
        [
            "values.yaml: image: 'registry' is a required property",
            "values.yaml: replicas: 'zero' is not of type 'integer'",
        ],
    ),
    ("schema-not-json", {"schema": "{not json"}, ["values.schema.json: is not valid JSON"]),
    ("schema-invalid", {"schema": {"type": "banana"}}, ["values.schema.json: is not a valid JSON Schema"]),
    ("no-templates", {"templates": {}}, ["templates/: no templates found"]),
    (
        "bad-dependency",
        {"chart_yaml": GOOD_CHART_YAML + "dependencies:\n  - repository: https://charts.example\n"},
        ["dependencies[0]: name and version missing"],
    ),
]


@pytest.mark.parametrize(("chart_kwargs", "expected"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_chart_reports_each_problem(tmp_path: Path, chart_kwargs: dict, expected: list[str]) -> None:
    chart = load_chart(
        write_chart(tmp_path / "c", **chart_kwargs), expected_name="threek8s", expected_app_version="1.0.0"
    )
    assert len(chart.problems) == len(expected), chart.problems
    for problem, fragment in zip(chart.problems, expected, strict=True):
        assert fragment in problem


def test_three_problems_are_three_problems(tmp_path: Path) -> None:
    chart_yaml = "apiVersion: v1\nname: wrong\nversion: 1.0.0\nappVersion: not-semver\n"
    chart = load_chart(
        write_chart(tmp_path / "c", chart_yaml=chart_yaml), expected_name="threek8s", expected_app_version="1.0.0"
    )
    assert len(chart.problems) == 3, chart.problems
    assert any("apiVersion" in p for p in chart.problems)
    assert any("name is 'wrong'" in p for p in chart.problems)
    assert any("appVersion 'not-semver'" in p for p in chart.problems)
    assert not chart.ok


def test_problems_across_files_are_all_reported(tmp_path: Path) -> None:
    chart = load_chart(
        write_chart(
            tmp_path / "c",
            chart_yaml="apiVersion: v1\nname: x\nversion: v1\nappVersion: 2.0.0\n",
            values="replicas: 0\nimage: {registry: 5}\n",
            schema=SCHEMA,
            templates={},
        ),
        expected_name="threek8s",
        expected_app_version="1.0.0",
    )
    # apiVersion, name, version, appVersion mismatch, 2 schema errors, no templates
    assert len(chart.problems) == 7, chart.problems
    assert "values.yaml: image.registry: 5 is not of type 'string'" in " ".join(chart.problems)
    assert "values.yaml: replicas: 0 is less than the minimum of 1" in " ".join(chart.problems)


def test_dependencies_description_and_timestamps(tmp_path: Path) -> None:
    chart_yaml = GOOD_CHART_YAML + (
        "dependencies:\n"
        "  - name: postgresql\n    version: ~15.5.0\n    repository: https://charts.bitnami.com/bitnami\n"
        "    condition: postgresql.enabled\n"
        "  - name: redis\n    version: 19.x\n    repository: oci://registry-1.docker.io/bitnamicharts\n"
    )
    chart = load_chart(
        write_chart(tmp_path / "c", chart_yaml=chart_yaml, values="released: 2024-01-02\n"),
        expected_name="threek8s",
        expected_app_version="1.0.0",
    )
    assert chart.problems == []
    assert chart.dependencies == [
        ChartDependency("postgresql", "~15.5.0", "https://charts.bitnami.com/bitnami", "postgresql.enabled"),
        ChartDependency("redis", "19.x", "oci://registry-1.docker.io/bitnamicharts", ""),
    ]
    assert chart.description == "demo"
    assert chart.values == {"released": "2024-01-02"}  # stays a string, as in Helm


def test_templates_are_relative_sorted_and_skip_hidden_and_ignored(tmp_path: Path) -> None:
    root = write_chart(
        tmp_path / "c",
        templates={"z.yaml": "", "a/b.yaml": "", "_helpers.tpl": "", ".hidden.yaml": "", "old.bak": ""},
    )
    (root / ".helmignore").write_text("*.bak\n")
    chart = load_chart(root, expected_name="threek8s", expected_app_version="1.0.0")
    assert chart.templates == ["_helpers.tpl", "a/b.yaml", "z.yaml"]


def test_not_a_directory(tmp_path: Path) -> None:
    chart = load_chart(tmp_path / "missing", expected_name="threek8s", expected_app_version="1.0.0")
    assert len(chart.problems) == 1 and "is not a directory" in chart.problems[0]


# -- size and alias limits: refused files are named with their size, the limit and what to do --


def test_oversize_values_yaml_is_refused_unread(tmp_path: Path) -> None:
    values = "key: " + "x" * MAX_VALUES_BYTES + "\n"

    chart = load_chart(
        write_chart(tmp_path / "c", values=values), expected_name="threek8s", expected_app_version="1.0.0"
    )

    assert chart.problems == [
        f"values.yaml: is {len(values):,} bytes, over the limit of 1 MiB; move large data out of the default "
        "values (e.g. into the application's own configuration)"
    ]
    assert chart.values == {}


def test_oversize_chart_yaml_is_refused(tmp_path: Path) -> None:
    chart_yaml = GOOD_CHART_YAML + "annotations:\n  notes: " + "x" * 200 + "\n"

    chart = load_chart(
        write_chart(tmp_path / "c", chart_yaml=chart_yaml),
        expected_name="threek8s",
        expected_app_version="1.0.0",
        limits=ChartLimits(chart_yaml_bytes=200),
    )

    assert chart.problems == [
        f"Chart.yaml: is {len(chart_yaml):,} bytes, over the limit of 200 bytes; "
        "keep Chart.yaml to the chart's metadata"
    ]


def test_each_template_and_all_templates_together_are_limited(tmp_path: Path) -> None:
    root = write_chart(
        tmp_path / "c",
        templates={
            "big.yaml": "x" * 2048,
            "small.yaml": "x" * 1000,
            "more/small.yaml": "x" * 1000,
            ".hidden": "x" * 9999,
        },
    )

    chart = load_chart(
        root,
        expected_name="threek8s",
        expected_app_version="1.0.0",
        limits=ChartLimits(template_bytes=1024 * 2 - 1, templates_total_bytes=4000),
    )

    assert chart.problems == [
        "templates/big.yaml: is 2,048 bytes, over the limit of 2,047 bytes; split it into smaller templates "
        "or move data out of the chart",
        "templates/: its 3 templates hold 4,048 bytes together, over the limit of 4,000 bytes; remove unused "
        "templates or move data out of the chart",
    ]


def test_alias_bomb_in_values_is_a_problem_and_nothing_is_stored(tmp_path: Path) -> None:
    # 8 levels of 9 aliases: 342 bytes of YAML, 43 million values once expanded
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, 8)]
    values = "\n".join(lines) + "\n"

    chart = load_chart(
        write_chart(tmp_path / "c", values=values), expected_name="threek8s", expected_app_version="1.0.0"
    )

    assert chart.problems == [
        "values.yaml: refused at line 5, column 10: its aliases (*name) expand to more than 1,000 alias uses "
        "(the limit; aliases inside anchors multiply); use fewer or less nested aliases"
    ]
    assert chart.values == {}


def test_alias_limits_can_be_overridden(tmp_path: Path) -> None:
    values = "base: &base {replicas: 2}\nfrontend: *base\nbackend: *base\n"
    root = write_chart(tmp_path / "c", values=values)

    assert load_chart(root, expected_name="threek8s", expected_app_version="1.0.0").problems == []
    refused = load_chart(
        root, expected_name="threek8s", expected_app_version="1.0.0", limits=ChartLimits(yaml_alias_expansions=1)
    )
    assert len(refused.problems) == 1
    assert refused.problems[0].startswith("values.yaml: refused at line 3, column 10: its aliases (*name) expand")


def test_index_metadata_is_kept_from_chart_yaml(tmp_path: Path) -> None:
    chart_yaml = GOOD_CHART_YAML + (
        "home: https://threek8s.example.com\nsources: [https://github.com/stianfro/threek8s]\n"
        "keywords: [kubernetes, demo]\nmaintainers:\n- name: Stian\n  email: s@example.com\n"
        "icon: https://threek8s.example.com/icon.png\nannotations:\n  category: demo\n"
        "kubeVersion: '>=1.25.0-0'\ntype: application\ndeprecated: false\n"
    )
    chart = load_chart(
        write_chart(tmp_path / "c", chart_yaml=chart_yaml), expected_name="threek8s", expected_app_version="1.0.0"
    )
    assert chart.problems == []
    assert chart.index_metadata == {
        "home": "https://threek8s.example.com",
        "sources": ["https://github.com/stianfro/threek8s"],
        "keywords": ["kubernetes", "demo"],
        "maintainers": [{"name": "Stian", "email": "s@example.com"}],
        "icon": "https://threek8s.example.com/icon.png",
        "annotations": {"category": "demo"},
        "kubeVersion": ">=1.25.0-0",
        "type": "application",
    }


def test_ill_formed_index_metadata_is_a_problem_each(tmp_path: Path) -> None:
    chart_yaml = GOOD_CHART_YAML + (
        "keywords: kubernetes\nmaintainers:\n- email: s@example.com\nannotations:\n  replicas: 3\ndeprecated: 'yes'\n"
    )
    chart = load_chart(
        write_chart(tmp_path / "c", chart_yaml=chart_yaml), expected_name="threek8s", expected_app_version="1.0.0"
    )
    assert chart.problems == [
        "Chart.yaml: keywords: must be a list of strings; fix keywords (helm repo index publishes it)",
        "Chart.yaml: maintainers: must be a list of {name, email, url} mappings of strings, each with a name; "
        "fix maintainers (helm repo index publishes it)",
        "Chart.yaml: annotations: must map names to string values (quote numbers and booleans); "
        "fix annotations (helm repo index publishes it)",
        "Chart.yaml: deprecated: must be true or false; fix deprecated (helm repo index publishes it)",
    ]
