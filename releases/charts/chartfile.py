"""Read a chart directory and list every problem it has (not only the first).

:func:`load_chart` checks Chart.yaml, values.yaml, values.schema.json and templates/ and returns a
:class:`LoadedChart` whatever it finds: ``problems`` is empty when the chart is usable. Every
message says which file is wrong and what to do about it.

The chart comes from an untrusted commit, so nothing is read through a symbolic link (every link
is a problem, see :mod:`.confine`) and every file is size-checked before it is read: the limits
below are module constants, overridable per call with :class:`ChartLimits`. YAML aliases are
bounded too (:mod:`.yamlio`).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from releases.charts.confine import chart_path_problems
from releases.charts.helmignore import IgnoreRules, IgnoreSyntaxError, chart_files
from releases.charts.yamlio import (
    MAX_YAML_ALIAS_EXPANSIONS,
    MAX_YAML_ALIAS_NODES,
    YamlExpansionError,
    describe_yaml_error,
    load_yaml,
)
from releases.versions import InvalidVersion, VersionTooLong, parse_version

CHART_API_VERSION = "v2"
CHART_FILE = "Chart.yaml"
VALUES_FILE = "values.yaml"
SCHEMA_FILE = "values.schema.json"
TEMPLATES_DIR = "templates"

KIB = 1024
MIB = 1024 * KIB
#: Chart.yaml holds metadata only; public ones, even with many dependencies and annotations, are a
#: few KiB.
MAX_CHART_YAML_BYTES = 64 * KIB
#: The largest public values.yaml files (kube-prometheus-stack, gitlab) are about 200 KiB, mostly
#: comments. The values are stored as JSON with the chart.
MAX_VALUES_BYTES = 1 * MIB
#: values.schema.json, read and checked with the values.
MAX_SCHEMA_BYTES = 1 * MIB
#: One file under templates/. Hand-written templates are a few KiB; 1 MiB leaves room for a
#: generated one (CRDs) while keeping helm's memory for a render small.
MAX_TEMPLATE_BYTES = 1 * MIB
#: All the files under templates/ that helm reads (.helmignore applied), together.
MAX_TEMPLATES_TOTAL_BYTES = 4 * MIB


@dataclass(frozen=True)
class ChartLimits:
    """The size limits :func:`load_chart` applies; the defaults are this module's constants."""

    chart_yaml_bytes: int = MAX_CHART_YAML_BYTES
    values_bytes: int = MAX_VALUES_BYTES
    schema_bytes: int = MAX_SCHEMA_BYTES
    template_bytes: int = MAX_TEMPLATE_BYTES
    templates_total_bytes: int = MAX_TEMPLATES_TOTAL_BYTES
    yaml_alias_nodes: int = MAX_YAML_ALIAS_NODES
    yaml_alias_expansions: int = MAX_YAML_ALIAS_EXPANSIONS


def describe_size(size: int) -> str:
    """``1048576`` -> ``1 MiB``; ``1500`` -> ``1,500 bytes`` (exact, for limits and sizes)."""
    for unit, name in ((MIB, "MiB"), (KIB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size:,} bytes"


def _too_big(name: str, size: int, limit: int, advice: str) -> str:
    return f"{name}: is {size:,} bytes, over the limit of {describe_size(limit)}; {advice}"


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
    #: The Chart.yaml fields ``helm repo index`` copies into index.yaml (see :data:`INDEX_METADATA_FIELDS`).
    index_metadata: dict[str, Any] = field(default_factory=dict)
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


def _read_text(path: Path, problems: list[str], *, what: str, limit: int, advice: str) -> str | None:
    """The file's text, or ``None`` with a problem appended. Never follows a symbolic link, and
    never reads more than ``limit`` bytes (the size is checked on the open file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        problems.append(f"{path.name}: cannot be read ({error.strerror}); check the file's permissions")
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            problems.append(f"{path.name}: is not a regular file; commit {what} as a plain file")
            return None
        if info.st_size > limit:
            problems.append(_too_big(path.name, info.st_size, limit, advice))
            return None
        data = file.read(limit + 1)
    if len(data) > limit:  # grew since fstat
        problems.append(_too_big(path.name, len(data), limit, advice))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(f"{path.name}: is not UTF-8 text; save {what} as UTF-8")
        return None


def _read_yaml(
    path: Path, problems: list[str], *, what: str, limit: int, advice: str, limits: ChartLimits
) -> tuple[bool, Any]:
    """``(parsed_ok, data)``; appends a problem when the file is unreadable, too big or not YAML."""
    text = _read_text(path, problems, what=what, limit=limit, advice=advice)
    if text is None:
        return False, None
    try:
        return True, load_yaml(
            text, max_alias_nodes=limits.yaml_alias_nodes, max_alias_expansions=limits.yaml_alias_expansions
        )
    except YamlExpansionError as error:
        problems.append(f"{path.name}: refused at {describe_yaml_error(error)}")
        return False, None
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


#: Chart.yaml fields a chart repository's index.yaml carries besides name, versions and
#: description (``helm repo index`` copies the whole metadata): the kind of value each must hold.
INDEX_METADATA_FIELDS: dict[str, str] = {
    "home": "string",
    "sources": "strings",
    "keywords": "strings",
    "maintainers": "maintainers",
    "icon": "string",
    "annotations": "string map",
    "kubeVersion": "string",
    "type": "string",
    "deprecated": "boolean",
}
_MAINTAINER_KEYS = ("name", "email", "url")


def _index_metadata(metadata: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The well-formed :data:`INDEX_METADATA_FIELDS` of Chart.yaml; a problem for each ill-formed one."""
    found: dict[str, Any] = {}
    for key, kind in INDEX_METADATA_FIELDS.items():
        value = metadata.get(key)
        if value is None or value is False or value == "" or value == [] or value == {}:
            continue  # helm repo index leaves empty fields (and deprecated: false) out
        if (kind == "string" and isinstance(value, str)) or (kind == "boolean" and value is True):
            found[key] = value
        elif kind == "strings" and isinstance(value, list) and all(isinstance(item, str) for item in value):
            found[key] = list(value)
        elif kind == "string map" and isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            found[key] = {str(k): v for k, v in value.items()}
        elif kind == "maintainers" and isinstance(value, list) and all(_is_maintainer(item) for item in value):
            found[key] = [{k: item[k] for k in _MAINTAINER_KEYS if item.get(k)} for item in value]
        else:
            advice = {
                "string": f"{key}: must be a string",
                "boolean": f"{key}: must be true or false",
                "strings": f"{key}: must be a list of strings",
                "string map": f"{key}: must map names to string values (quote numbers and booleans)",
                "maintainers": f"{key}: must be a list of {{name, email, url}} mappings of strings, each with a name",
            }[kind]
            problems.append(f"Chart.yaml: {advice}; fix {key} (helm repo index publishes it)")
    return found


def _is_maintainer(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("name"), str)
        and bool(item["name"])
        and all(isinstance(item.get(k), str) for k in _MAINTAINER_KEYS if item.get(k) is not None)
    )


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
    chart.index_metadata = _index_metadata(metadata, problems)


def _check_schema(chart: LoadedChart, schema_path: Path, values_ok: bool, limits: ChartLimits) -> None:
    problems = chart.problems
    text = _read_text(
        schema_path,
        problems,
        what="the values schema",
        limit=limits.schema_bytes,
        advice="simplify the schema or delete it",
    )
    if text is None:
        return
    try:
        schema = json.loads(text)
    except ValueError as error:
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


def _check_template_sizes(chart: LoadedChart, templates_dir: Path, limits: ChartLimits) -> None:
    total = 0
    for template in chart.templates:
        size = (templates_dir / template).lstat().st_size
        total += size
        if size > limits.template_bytes:
            chart.problems.append(
                _too_big(
                    f"{TEMPLATES_DIR}/{template}",
                    size,
                    limits.template_bytes,
                    "split it into smaller templates or move data out of the chart",
                )
            )
    if total > limits.templates_total_bytes:
        chart.problems.append(
            f"{TEMPLATES_DIR}/: its {len(chart.templates)} templates hold {total:,} bytes together, over the limit "
            f"of {describe_size(limits.templates_total_bytes)}; remove unused templates or move data out of the chart"
        )


def load_chart(
    chart_dir: Path, *, expected_name: str, expected_app_version: str, limits: ChartLimits | None = None
) -> LoadedChart:
    """Load ``chart_dir`` and collect every problem into ``LoadedChart.problems``.

    Checks: no symbolic link or special file anywhere in the chart (every one is listed, and
    none is read); Chart.yaml exists and is YAML; ``apiVersion: v2``; ``name == expected_name``;
    ``version`` and ``appVersion`` are semver; ``appVersion == expected_app_version``;
    values.yaml is a YAML mapping; values.schema.json (when present) accepts the values (every
    error, with its path); templates/ holds at least one template; ``dependencies`` entries
    have a name and a version; .helmignore is valid; Chart.yaml, values.yaml, the schema, each
    template and all templates together are within ``limits`` (default: this module's
    constants), and the YAML files' aliases expand within them.
    """
    limits = limits or ChartLimits()
    chart_dir = Path(chart_dir)
    chart = LoadedChart(path=chart_dir)
    problems = chart.problems
    if not chart_dir.is_dir():
        problems.append(f"{chart_dir}: is not a directory; give the path of the chart (the folder with Chart.yaml)")
        return chart
    # Each link is listed once here; below, a linked file is skipped without a second problem.
    problems.extend(chart_path_problems(chart_dir))

    chart_path = chart_dir / CHART_FILE
    if chart_path.is_symlink():
        pass  # listed above, never read
    elif not chart_path.is_file():
        problems.append(f"Chart.yaml: not found in {chart_dir}; add it (apiVersion: v2, name, version, appVersion)")
    else:
        parsed, metadata = _read_yaml(
            chart_path,
            problems,
            what="the chart metadata",
            limit=limits.chart_yaml_bytes,
            advice="keep Chart.yaml to the chart's metadata",
            limits=limits,
        )
        if parsed and not isinstance(metadata, dict):
            problems.append("Chart.yaml: must be a YAML mapping (apiVersion, name, version, appVersion...)")
        elif parsed:
            _check_chart_yaml(chart, metadata, expected_name, expected_app_version)

    values_ok = False
    values_path = chart_dir / VALUES_FILE
    if values_path.is_symlink():
        pass  # listed above, never read
    elif not values_path.is_file():
        problems.append("values.yaml: not found; add it with the chart's default values (it may be empty)")
    else:
        parsed, values = _read_yaml(
            values_path,
            problems,
            what="the default values",
            limit=limits.values_bytes,
            advice="move large data out of the default values (e.g. into the application's own configuration)",
            limits=limits,
        )
        if parsed and values is None:
            values = {}
        if parsed and not isinstance(values, dict):
            problems.append(f"values.yaml: must be a YAML mapping of settings, not a {type(values).__name__}")
        elif parsed:
            chart.values = values
            values_ok = True

    schema_path = chart_dir / SCHEMA_FILE
    if schema_path.is_file() and not schema_path.is_symlink():
        _check_schema(chart, schema_path, values_ok, limits)

    rules = IgnoreRules()
    if not (chart_dir / ".helmignore").is_symlink():
        try:
            rules = IgnoreRules.for_chart(chart_dir)
        except (IgnoreSyntaxError, OSError, UnicodeDecodeError) as error:
            problems.append(f".helmignore: {error}; fix or remove that line")
    templates_dir = chart_dir / TEMPLATES_DIR
    if templates_dir.is_symlink():
        return chart
    if templates_dir.is_dir():
        prefix = TEMPLATES_DIR + "/"
        chart.templates = [path[len(prefix) :] for path in chart_files(chart_dir, rules) if path.startswith(prefix)]
        _check_template_sizes(chart, templates_dir, limits)
    if not chart.templates:
        problems.append("templates/: no templates found; add the Kubernetes manifests (e.g. templates/deployment.yaml)")
    return chart
