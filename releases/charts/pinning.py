"""Point a chart's values at the images a release pushed, by digest.

A component's image is taken by the chart from a values mapping (``frontend.image``) with the
usual ``registry``/``repository``/``tag`` keys, rendered by templates such as
``{{ .registry }}/{{ .repository }}:{{ .tag | default .Chart.AppVersion }}``.
:func:`pin_values` rewrites those keys so the reference is ``host/namespace/name:1.4.0@sha256:...``:
a tag and a digest, which a container runtime pulls by the digest.

- with a ``registry`` key, ``registry`` gets the host and ``repository`` the path;
- without one, ``repository`` gets the whole ``host/path`` (templates without a registry key
  still render the full reference).

values.yaml is rewritten with ruamel.yaml's round trip, so comments, key order and quoting stay
as they were; the same text and pins give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from releases.charts.yamlio import YamlExpansionError, check_expansion, describe_yaml_error


@dataclass(frozen=True)
class ImagePin:
    """Pin ``values_path`` of the values to ``repository`` (``host/namespace/name``) at ``tag``@``digest``."""

    component: str
    values_path: str
    repository: str
    tag: str
    digest: str


@dataclass(frozen=True)
class PinnedValues:
    """The rewritten values.yaml, what each pinned mapping now holds, and every problem."""

    text: str
    pins: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _round_trip() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def pin_values(text: str, pins: Iterable[ImagePin]) -> PinnedValues:
    """``text`` (values.yaml) with every pin applied (see the module docstring).

    A problem for each pin whose path is missing or not a mapping, naming the path and what to
    add; the text is returned unchanged when any pin cannot be applied, or it is not YAML.
    """
    pins = list(pins)
    if not pins:
        return PinnedValues(text)
    yaml = _round_trip()
    try:
        check_expansion(text)
        data = yaml.load(text)
    except YamlExpansionError as error:
        return PinnedValues(text, problems=[f"values.yaml: refused at {describe_yaml_error(error)}"])
    except YAMLError as error:
        return PinnedValues(text, problems=[f"values.yaml: invalid YAML ({str(error).splitlines()[0]}); fix it"])
    if data is None:
        data = {}
    problems: list[str] = []
    applied: dict[str, dict[str, str]] = {}
    for pin in pins:
        target = _mapping_at(data, pin.values_path.split("."))
        if not isinstance(target, dict):
            shown = "missing" if target is None else f"a {type(target).__name__}"
            problems.append(
                f"values.yaml: {pin.values_path} is {shown}, not a mapping; add {pin.values_path} with "
                f"registry, repository and tag (where the chart takes the {pin.component} image) or fix "
                f"images.{pin.component}.values in .release-registry.yaml"
            )
            continue
        host, _, path = pin.repository.partition("/")
        written = {"registry": host, "repository": path} if "registry" in target else {"repository": pin.repository}
        written["tag"] = f"{pin.tag}@{pin.digest}"
        for key, value in written.items():
            target[key] = DoubleQuotedScalarString(value)
        applied[pin.component] = {"values": pin.values_path, **written}
    if problems:
        return PinnedValues(text, problems=problems)
    out = io.StringIO()
    yaml.dump(data, out)
    return PinnedValues(out.getvalue(), pins=applied)


def _mapping_at(data: Any, keys: list[str]) -> Any:
    node = data
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node
