"""Read a chart directory and list every problem it has (not only the first).

:func:`load_chart` checks Chart.yaml, values.yaml, values.schema.json and templates/ and returns a
:class:`LoadedChart` whatever it finds: ``problems`` is empty when the chart is usable. Every
message says which file is wrong and what to do about it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from releases.charts.helmignore import IgnoreRules, IgnoreSyntaxError, chart_files
from releases.charts.yamlio import describe_yaml_error, load_yaml
from releases.versions import InvalidVersion, VersionTooLong, parse_version

CHART_API_VERSION = "v2"
CHART_FILE = "Chart.yaml"
VALUES_FILE = "values.yaml"
SCHEMA_FILE = "values.schema.json"
TEMPLATES_DIR = "templates"


@dataclass(frozen=True)
class ChartDependency:
    """One entry of ``dependencies:`` in Chart.yaml."""

    name: str
    version: str
    repository: str = ""
    condition: str = ""


@dataclass
class LoadedChart:
    """What :func:`load_chart` found. Fields are best effort when ``problems`` is not empty."""

    path: Path
    name: str = ""
    version: str = ""
    app_version: str = ""
    description: str = ""
    api_version: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)  # Chart.yaml as parsed
    values: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Any] | None = None
    templates: list[str] = field(default_factory=list)  # relative to templates/, sorted
    dependencies: list[ChartDependency] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def json_path(parts: Any) -> str:
    """``["frontend", "env", 0]`` -> ``frontend.env[0]``; the empty path is ``(root)``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def _read_yaml(path: Path, problems: list[str], *, what: str) -> tuple[bool, Any]:
    """``(parsed_ok, data)``; appends a problem when the file is unreadable or not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        problems.append(f"{path.name}: is not UTF-8 text; save {what} as UTF-8")
        return False, None
    except OSError as error:
        problems.append(f"{path.name}: cannot be read ({error.strerror}); check the file's permissions")
        return False, None
    try:
        return True, load_yaml(text)
    except yaml.YAMLError as error:
        problems.append(f"{path.name}: invalid YAML at {describe_yaml_error(error)}; fix the syntax of {what}")
        return False, None


def _check_semver(label: str, value: Any, problems: list[str]) -> str:
    """Return ``value`` as a string when it is valid semver, else append a problem and return ''."""
    if value is None or value == "":
        problems.append(f"Chart.yaml: {label} is missing; set {label}: to a semantic version such as 1.0.0")
        return ""
    if not isinstance(value, str):
        problems.append(
            f"Chart.yaml: {label} is {value!r} ({type(value).__name__}), not a string; "
            f'quote it (e.g. {label}: "1.0.0") and use a semantic version MAJOR.MINOR.PATCH'
        )
        return ""
    try:
        parse_version(value)
    except VersionTooLong as error:
        problems.append(f"Chart.yaml: {label}: {error}")
        return ""
    except InvalidVersion:
        problems.append(
            f"Chart.yaml: {label} {value!r} is not a valid semantic version; use MAJOR.MINOR.PATCH "
            "(e.g. 1.2.3, 1.2.3-rc.1, without a leading 'v')"
        )
        return ""
    return value


def _load_dependencies(raw: Any, problems: list[str]) -> list[ChartDependency]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append("Chart.yaml: dependencies must be a list of {name, version, repository} mappings")
        return []
    dependencies = []
    for index, item in enumerate(raw):
        where = f"Chart.yaml: dependencies[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where} must be a mapping with name, version and repository")
            continue
        name, version = item.get("name"), item.get("version")
        missing = [key for key, value in (("name", name), ("version", version)) if not value]
        if missing:
            problems.append(f"{where}: {' and '.join(missing)} missing; every dependency needs a name and a version")
            continue
        dependencies.append(
            ChartDependency(
                name=str(name),
                version=str(version),
                repository=str(item.get("repository") or ""),
                condition=str(item.get("condition") or ""),
            )
        )
    return dependencies


def _check_chart_yaml(
    chart: LoadedChart, metadata: dict[str, Any], expected_name: str, expected_app_version: str
) -> None:
    problems = chart.problems
    chart.metadata = metadata
    api_version = metadata.get("apiVersion")
    chart.api_version = str(api_version or "")
    if api_version != CHART_API_VERSION:
        shown = "missing" if api_version is None else f"{api_version!r}"
        problems.append(
            f"Chart.yaml: apiVersion is {shown}; set apiVersion: v2 (Helm 3+ charts; v1 is the Helm 2 format)"
        )
    name = metadata.get("name")
    chart.name = str(name or "")
    if not name:
        problems.append(f"Chart.yaml: name is missing; set name: {expected_name}")
    elif name != expected_name:
        problems.append(f"Chart.yaml: name is {name!r}, expected {expected_name!r}; set name: {expected_name}")
    chart.version = _check_semver("version", metadata.get("version"), problems)
    chart.app_version = _check_semver("appVersion", metadata.get("appVersion"), problems)
    if chart.app_version and chart.app_version != expected_app_version:
        problems.append(
            f"Chart.yaml: appVersion is {chart.app_version!r} but this release is {expected_app_version!r}; "
            f'set appVersion: "{expected_app_version}" so the chart deploys the images of this release'
        )
    description = metadata.get("description")
    chart.description = description if isinstance(description, str) else ""
    chart.dependencies = _load_dependencies(metadata.get("dependencies"), problems)


def _check_schema(chart: LoadedChart, schema_path: Path, values_ok: bool) -> None:
    problems = chart.problems
    try:
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        problems.append(f"{SCHEMA_FILE}: is not valid JSON ({error}); fix it or delete it")
        return
    if not isinstance(schema, dict):
        problems.append(f"{SCHEMA_FILE}: must be a JSON object (a JSON Schema); fix it or delete it")
        return
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as error:
        problems.append(
            f"{SCHEMA_FILE}: is not a valid JSON Schema at {json_path(error.path)}: {error.message}; fix the schema"
        )
        return
    chart.schema = schema
    if not values_ok:
        return
    validator = validator_class(schema)
    errors = sorted(validator.iter_errors(chart.values), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    for error in errors:
        problems.append(
            f"values.yaml: {json_path(error.absolute_path)}: {error.message} "
            f"(violates {SCHEMA_FILE}); change the value or the schema"
        )


def load_chart(chart_dir: Path, *, expected_name: str, expected_app_version: str) -> LoadedChart:
    """Load ``chart_dir`` and collect every problem into ``LoadedChart.problems``.

    Checks: Chart.yaml exists and is YAML; ``apiVersion: v2``; ``name == expected_name``;
    ``version`` and ``appVersion`` are semver; ``appVersion == expected_app_version``;
    values.yaml is a YAML mapping; values.schema.json (when present) accepts the values (every
    error, with its path); templates/ holds at least one template; ``dependencies`` entries
    have a name and a version; .helmignore is valid.
    """
    chart_dir = Path(chart_dir)
    chart = LoadedChart(path=chart_dir)
    problems = chart.problems
    if not chart_dir.is_dir():
        problems.append(f"{chart_dir}: is not a directory; give the path of the chart (the folder with Chart.yaml)")
        return chart

    chart_path = chart_dir / CHART_FILE
    if not chart_path.is_file():
        problems.append(f"Chart.yaml: not found in {chart_dir}; add it (apiVersion: v2, name, version, appVersion)")
    else:
        parsed, metadata = _read_yaml(chart_path, problems, what="the chart metadata")
        if parsed and not isinstance(metadata, dict):
            problems.append("Chart.yaml: must be a YAML mapping (apiVersion, name, version, appVersion...)")
        elif parsed:
            _check_chart_yaml(chart, metadata, expected_name, expected_app_version)

    values_ok = False
    values_path = chart_dir / VALUES_FILE
    if not values_path.is_file():
        problems.append("values.yaml: not found; add it with the chart's default values (it may be empty)")
    else:
        parsed, values = _read_yaml(values_path, problems, what="the default values")
        if parsed and values is None:
            values = {}
        if parsed and not isinstance(values, dict):
            problems.append(f"values.yaml: must be a YAML mapping of settings, not a {type(values).__name__}")
        elif parsed:
            chart.values = values
            values_ok = True

    schema_path = chart_dir / SCHEMA_FILE
    if schema_path.is_file():
        _check_schema(chart, schema_path, values_ok)

    try:
        rules = IgnoreRules.for_chart(chart_dir)
    except (IgnoreSyntaxError, OSError, UnicodeDecodeError) as error:
        problems.append(f".helmignore: {error}; fix or remove that line")
        rules = IgnoreRules()
    templates_dir = chart_dir / TEMPLATES_DIR
    if templates_dir.is_dir():
        prefix = TEMPLATES_DIR + "/"
        chart.templates = [path[len(prefix) :] for path in chart_files(chart_dir, rules) if path.startswith(prefix)]
    if not chart.templates:
        problems.append("templates/: no templates found; add the Kubernetes manifests (e.g. templates/deployment.yaml)")
    return chart
