"""``.release-registry.yaml``: a project's components, versioned with its source.

An optional file at the repository root says where the chart lives and, per component
(``frontend``, ``backend``: the spec's two images), the image's name, its build context,
Dockerfile and build arguments, and where the chart takes the image from its values::

    chart:
      path: helm/threek8s          # default: CHART_PATH
    images:
      frontend:
        name: frontend             # default: threek8s-frontend
        context: frontend/         # default: <component>/
        dockerfile: Dockerfile     # relative to the context
        build_args: {}             # KEY: value, over IMAGE_BUILD_ARGS
        values: frontend.image     # registry/repository/tag keys pinned by digest; optional

Anything missing takes the default; unknown keys are refused. :func:`parse_layout` lists every
problem at once, each naming the key and saying what to write instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

import jsonschema
import yaml

from releases.charts.yamlio import YamlExpansionError, describe_yaml_error, load_yaml

LAYOUT_FILE = ".release-registry.yaml"
#: The file holds a few paths and names; 64 KiB is far beyond any real one.
MAX_LAYOUT_BYTES = 64 * 1024
COMPONENTS = ("frontend", "backend")
DEFAULT_DOCKERFILE = "Dockerfile"

# The OCI repository-name grammar (as releases.validators checks DockerImage.name).
_REPOSITORY_NAME = r"^[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$"
_VALUES_PATH = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
_BUILD_ARG = r"^[A-Za-z_][A-Za-z0-9_]*$"

_PATH = {"type": "string", "maxLength": 255}
_IMAGE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {
            "type": "string",
            "maxLength": 128,
            "pattern": _REPOSITORY_NAME,
            "x-advice": "use lowercase letters, digits and . _ - (for example frontend)",
        },
        "context": {**_PATH, "x-advice": "give the build context folder relative to the repository root"},
        "dockerfile": {**_PATH, "minLength": 1, "x-advice": "give the Dockerfile relative to the context"},
        "build_args": {
            "type": "object",
            "maxProperties": 64,
            "propertyNames": {
                "pattern": _BUILD_ARG,
                "x-advice": "name build arguments like shell variables (for example NODE_VERSION)",
            },
            "additionalProperties": {"type": ["string", "number"], "x-advice": "quote the value"},
        },
        "values": {
            "type": ["string", "null"],
            "maxLength": 255,
            "pattern": _VALUES_PATH,
            "x-advice": "give the dotted path of the values mapping with registry/repository/tag "
            "(for example frontend.image)",
        },
    },
}
#: The JSON Schema of ``.release-registry.yaml`` (Draft 2020-12; ``x-advice`` words the refusals).
LAYOUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": LAYOUT_FILE,
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "chart": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "path": {**_PATH, "minLength": 1, "x-advice": "give the chart folder relative to the repository root"}
            },
        },
        "images": {
            "type": "object",
            "additionalProperties": False,
            "properties": {component: _IMAGE_SCHEMA for component in COMPONENTS},
        },
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(LAYOUT_SCHEMA)


class LayoutInvalid(ValueError):
    """``.release-registry.yaml`` cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class ImageLayout:
    """One component's image: what is built, from where, and where the chart takes it."""

    component: str
    name: str
    context: str
    dockerfile: str = DEFAULT_DOCKERFILE
    build_args: Mapping[str, str] = field(default_factory=dict)
    values: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "context": self.context,
            "dockerfile": self.dockerfile,
            "build_args": dict(sorted(self.build_args.items())),
            "values": self.values,
        }


@dataclass(frozen=True)
class ReleaseLayout:
    """The effective configuration a release is planned with (file values over the defaults)."""

    chart_path: str
    images: tuple[ImageLayout, ...]
    source: str = "defaults"

    def image(self, component: str) -> ImageLayout:
        return next(image for image in self.images if image.component == component)

    def names(self) -> dict[str, str]:
        """Component -> image name."""
        return {image.component: image.name for image in self.images}

    def component_of(self, name: str) -> str | None:
        return next((image.component for image in self.images if image.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "chart": {"path": self.chart_path},
            "images": {image.component: image.to_json() for image in self.images},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None, *, defaults: ReleaseLayout) -> ReleaseLayout:
        """The layout stored by ``to_json``; ``defaults`` for a release planned before layouts were stored."""
        if not data:
            return defaults
        images = data.get("images") or {}
        return cls(
            chart_path=(data.get("chart") or {}).get("path") or defaults.chart_path,
            images=tuple(_merge(defaults.image(component), images.get(component) or {}) for component in COMPONENTS),
            source=data.get("source") or defaults.source,
        )


def default_layout(chart_path: str, names: Mapping[str, str], *, source: str = "defaults") -> ReleaseLayout:
    """The layout of a project without ``.release-registry.yaml``: ``names`` per component,
    contexts ``<component>/``, ``Dockerfile``, no build arguments and no values to pin."""
    return ReleaseLayout(
        chart_path=chart_path,
        images=tuple(ImageLayout(component, names[component], f"{component}/") for component in COMPONENTS),
        source=source,
    )


def _merge(default: ImageLayout, given: Mapping[str, Any]) -> ImageLayout:
    build_args = given.get("build_args")
    return replace(
        default,
        name=given.get("name", default.name),
        context=given.get("context", default.context),
        dockerfile=given.get("dockerfile", default.dockerfile),
        build_args={str(k): str(v) for k, v in (build_args or {}).items()} if build_args is not None else {},
        values=given.get("values", default.values),
    )


def _where(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(root)"


def _describe(error: jsonschema.ValidationError) -> str:
    where = _where(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        unknown = sorted(str(key) for key in error.instance if key not in allowed)
        prefix = f"{where}." if error.absolute_path else ""
        return "; ".join(
            f"{prefix}{key}: unknown key; the keys allowed here are {', '.join(allowed)}" for key in unknown
        )
    if error.validator == "propertyNames":
        best = jsonschema.exceptions.best_match(error.context) if error.context else None
        advice = (best.schema or {}).get("x-advice", "rename it") if best is not None else "rename it"
        return f"{where}: {best.instance if best is not None else error.instance!r} is not a valid key; {advice}"
    if error.validator == "pattern":
        return f"{where}: {error.instance!r} is not allowed here; {schema.get('x-advice', 'fix the value')}"
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, str) else " or ".join(error.validator_value)
        shown = {dict: "a mapping", list: "a list"}.get(type(error.instance), f"{error.instance!r}")
        advice = schema.get("x-advice")
        return f"{where}: is {shown}, not a {wanted}" + (f"; {advice}" if advice else "")
    advice = schema.get("x-advice")
    return f"{where}: {error.message}" + (f"; {advice}" if advice else "")


def _path_problem(where: str, value: str) -> str | None:
    """Why ``value`` cannot name a path inside the repository, before anything is looked at."""
    if "\0" in value:
        return f"{where}: contains a NUL character; give a path inside the repository"
    path = PurePosixPath(value)
    if path.is_absolute():
        return f"{where}: {value!r} is absolute; give a path relative to the repository root"
    if ".." in path.parts:
        return f"{where}: {value!r} contains '..'; give a path inside the repository without '..'"
    return None


def parse_layout(text: str | bytes | None, *, defaults: ReleaseLayout, source: str = LAYOUT_FILE) -> ReleaseLayout:
    """The effective layout of ``text`` (the file's content; ``None`` when the commit has none).

    Refuses with :class:`LayoutInvalid`, listing every problem at once: text that is not UTF-8
    YAML (aliases bounded as for charts), anything ``LAYOUT_SCHEMA`` refuses (unknown keys,
    wrong types, image names outside the OCI grammar, values paths that are not dotted keys),
    absolute paths or paths with ``..``, two components with the same image name or values path.
    """
    if text is None:
        return replace(defaults, source=f"defaults (no {LAYOUT_FILE})")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise LayoutInvalid([f"{LAYOUT_FILE}: is not UTF-8 text; save it as UTF-8"]) from None
    try:
        data = load_yaml(text)
    except YamlExpansionError as error:
        raise LayoutInvalid([f"{LAYOUT_FILE}: refused at {describe_yaml_error(error)}"]) from None
    except yaml.YAMLError as error:
        raise LayoutInvalid([f"{LAYOUT_FILE}: invalid YAML at {describe_yaml_error(error)}; fix the syntax"]) from None
    if data is None:
        return replace(defaults, source=source)
    if not isinstance(data, dict):
        raise LayoutInvalid([f"{LAYOUT_FILE}: must be a mapping with chart: and images:, not a {type(data).__name__}"])

    errors = sorted(_VALIDATOR.iter_errors(data), key=lambda e: ([str(p) for p in e.absolute_path], e.message))
    problems = [_describe(error) for error in errors]
    chart, images = data.get("chart"), data.get("images")
    paths = [("chart.path", chart.get("path"))] if isinstance(chart, dict) else []
    for component, image in images.items() if isinstance(images, dict) else []:
        if isinstance(image, dict):
            paths += [(f"images.{component}.{key}", image.get(key)) for key in ("context", "dockerfile")]
    problems += [p for where, value in paths if isinstance(value, str) and (p := _path_problem(where, value))]
    if problems:
        raise LayoutInvalid([f"{LAYOUT_FILE}: {problem}" for problem in problems])
    layout = ReleaseLayout.from_json({**data, "source": source}, defaults=defaults)
    frontend, backend = (layout.image(component) for component in COMPONENTS)
    if frontend.name == backend.name:
        problems.append(
            f"images: frontend and backend are both named {frontend.name!r}; give each component its own image"
        )
    if frontend.values and frontend.values == backend.values:
        problems.append(
            f"images: frontend and backend both take their image from values {frontend.values!r}; "
            "give each component its own values path"
        )
    if problems:
        raise LayoutInvalid([f"{LAYOUT_FILE}: {problem}" for problem in problems])
    return layout
