"""YAML loading the way Helm sees it: plain data, no Python-specific objects.

PyYAML's safe loader turns ``2024-01-01`` into a ``datetime.date``; Helm (sigs.k8s.io/yaml) keeps
it a string. :class:`HelmYamlLoader` drops the timestamp resolver so values stay JSON-compatible
(values end up in JSON columns and in JSON Schema validation).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class HelmYamlLoader(_Base):  # type: ignore[valid-type,misc]
    """Safe loader without implicit timestamps (they stay strings)."""


HelmYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}


def load_yaml(text: str) -> Any:
    """One YAML document as plain data (dicts, lists, str, int, float, bool, None)."""
    return yaml.load(text, Loader=HelmYamlLoader)  # noqa: S506 - a safe loader


def load_all_yaml(text: str) -> Iterator[Any]:
    """Every document of a multi-document YAML stream."""
    return yaml.load_all(text, Loader=HelmYamlLoader)  # noqa: S506 - a safe loader


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """A one-line description with line/column (1-based) when PyYAML knows them."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    text = f"{where}{problem}"
    if context:
        text += f" ({context})"
    return text
