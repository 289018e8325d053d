"""Render a chart with real ``helm template`` and validate the manifests offline.

:func:`render_chart` runs ``helm template`` (no cluster needed) and parses its output.
:func:`validate_manifests` checks every rendered document against the Kubernetes OpenAPI
schemas bundled with the ``kubernetes-validate`` package, in its *strict* variant (unknown
fields are errors), without any network access. It reports every error, not only the first.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import yaml

from releases.charts.chartfile import json_path
from releases.charts.confine import chart_path_problems
from releases.charts.yamlio import YamlExpansionError, describe_yaml_error, load_all_yaml

#: Default Kubernetes version for rendering and validation (bundled by kubernetes-validate 1.37.0,
#: which ships schemas for 1.25 ... 1.37).
DEFAULT_KUBERNETES_VERSION = "1.31.0"
RENDER_TIMEOUT = 120.0
STDERR_LIMIT = 4000


class RenderFailed(Exception):
    """``helm template`` failed or printed something that is not YAML; ``stderr`` is helm's."""

    def __init__(self, message: str, *, stderr: str = "", returncode: int | None = None) -> None:
        super().__init__(message)
        self.stderr = stderr
        self.returncode = returncode


def _trim(text: str, limit: int = STDERR_LIMIT) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def render_chart(
    helm_bin: str | os.PathLike[str],
    chart_dir: str | os.PathLike[str],
    *,
    release_name: str = "threek8s",
    namespace: str = "default",
    kube_version: str = DEFAULT_KUBERNETES_VERSION,
    values: Mapping[str, Any] | None = None,
    timeout: float = RENDER_TIMEOUT,
) -> list[dict[str, Any]]:
    """Run ``helm template`` on ``chart_dir`` (a directory or a .tgz); return the manifests.

    ``values`` (optional) are merged over the chart's values.yaml (passed with ``--values``).
    Empty documents are skipped. Raises :class:`RenderFailed` carrying helm's trimmed stderr when
    helm exits non-zero, times out, or prints YAML that does not parse into mappings or whose
    aliases expand past :mod:`.yamlio`'s limits.

    A directory holding symbolic links or special files is refused (all of them listed) before
    helm runs, since helm would follow the links out of the chart.
    """
    if os.path.isdir(chart_dir):
        problems = chart_path_problems(Path(chart_dir))
        if problems:
            raise RenderFailed("chart refused before rendering: " + "; ".join(problems))
    command = [
        os.fspath(helm_bin),
        "template",
        release_name,
        os.fspath(chart_dir),
        "--namespace",
        namespace,
        "--kube-version",
        kube_version,
    ]
    with tempfile.TemporaryDirectory(prefix="render-") as tmp:
        if values is not None:
            values_file = Path(tmp) / "values.json"  # JSON is YAML; no quoting surprises
            values_file.write_text(json.dumps(values), encoding="utf-8")
            command += ["--values", str(values_file)]
        try:
            completed = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
            )
        except subprocess.TimeoutExpired as error:
            stderr = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else error.stderr or ""
            raise RenderFailed(f"helm template timed out after {timeout:.0f}s", stderr=_trim(stderr)) from None
        except OSError as error:
            raise RenderFailed(f"cannot run {command[0]}: {error.strerror}; install helm (bin/install-helm)") from None
    stderr = _trim(completed.stderr)
    if completed.returncode != 0:
        raise RenderFailed(
            f"helm template failed (exit {completed.returncode}): {stderr or 'no error output'}",
            stderr=stderr,
            returncode=completed.returncode,
        )
    try:
        documents = [doc for doc in load_all_yaml(completed.stdout) if doc is not None]
    except YamlExpansionError as error:
        raise RenderFailed(
            f"helm template printed YAML refused at {describe_yaml_error(error)}", stderr=stderr, returncode=0
        ) from None
    except yaml.YAMLError as error:
        raise RenderFailed(
            f"helm template printed invalid YAML at {describe_yaml_error(error)}; fix the template's indentation",
            stderr=stderr,
            returncode=0,
        ) from None
    for index, document in enumerate(documents):
        if not isinstance(document, dict):
            raise RenderFailed(
                f"rendered document {index + 1} is a {type(document).__name__}, not a Kubernetes object mapping",
                stderr=stderr,
                returncode=0,
            )
    return documents


# -- validation -------------------------------------------------------------------------------

_SCHEMA_PACKAGE = "kubernetes_validate"
_SCHEMA_ROOT = "kubernetes-json-schema"
_VERSION_DIR = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-local-strict$")


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.\d+)?", version.strip())
    if not match:
        raise ValueError(f"Kubernetes version {version!r} is not MAJOR.MINOR[.PATCH]")
    return int(match.group(1)), int(match.group(2))


@functools.cache
def bundled_kubernetes_versions() -> tuple[str, ...]:
    """Kubernetes versions (``1.31``...) whose strict schemas kubernetes-validate ships, oldest first."""
    root = resources.files(_SCHEMA_PACKAGE).joinpath(_SCHEMA_ROOT)
    found = []
    for entry in root.iterdir():
        match = _VERSION_DIR.match(entry.name)
        if match:
            found.append((int(match.group(1)), int(match.group(2))))
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


def schema_version_for(kubernetes_version: str) -> str:
    """The bundled schema set used for ``kubernetes_version``: the newest one not newer than it.

    Raises ``ValueError`` when the version is older than every bundled schema set or newer than
    the newest (upgrade kubernetes-validate then).
    """
    wanted = _major_minor(kubernetes_version)
    bundled = bundled_kubernetes_versions()
    if not bundled:
        raise ValueError("kubernetes-validate ships no schemas; reinstall it")
    newest = _major_minor(bundled[-1])
    if wanted > newest:
        raise ValueError(
            f"Kubernetes {kubernetes_version} is newer than the schemas kubernetes-validate ships "
            f"({bundled[0]} ... {bundled[-1]}); upgrade kubernetes-validate"
        )
    usable = [version for version in bundled if _major_minor(version) <= wanted]
    if not usable:
        raise ValueError(
            f"Kubernetes {kubernetes_version} is older than the schemas kubernetes-validate ships "
            f"({bundled[0]} ... {bundled[-1]})"
        )
    return usable[-1]


def _schema_dir(schema_version: str) -> Any:
    return resources.files(_SCHEMA_PACKAGE).joinpath(_SCHEMA_ROOT, f"v{schema_version}.0-local-strict")


@functools.cache
def _definitions(schema_version: str) -> referencing.Resource[Any]:
    text = _schema_dir(schema_version).joinpath("_definitions.json").read_text(encoding="utf-8")
    return referencing.Resource.from_contents(json.loads(text))


@functools.lru_cache(maxsize=256)
def _validator(schema_version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    """A strict validator for one kind, or ``None`` when no schema is bundled for it."""
    # kubernetes-validate's file naming: rbac.authorization.k8s.io/v1 -> rbac-v1, v1 -> v1.
    api_part = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_file = _schema_dir(schema_version).joinpath(f"{kind.lower()}-{api_part}.json")
    if not schema_file.is_file():
        return None
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    registry: referencing.Registry[Any] = _definitions(schema_version) @ referencing.Registry()
    registry = referencing.Resource.from_contents(schema) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _describe_error(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema or {}).get("properties", {})) if isinstance(error.schema, dict) else set()
        unknown = sorted(key for key in error.instance if key not in allowed) or ["?"]
        return "; ".join(
            f"{json_path([*path, key])}: unknown field (not in the Kubernetes schema); remove it or fix its spelling"
            for key in unknown
        )
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return f"{json_path(path)}: {best.message}"
    if error.validator == "required":
        return f"{json_path(path)}: {error.message} (required field missing)"
    return f"{json_path(path)}: {error.message}"


def _label(index: int, document: Mapping[str, Any]) -> str:
    kind = document.get("kind") if isinstance(document.get("kind"), str) else None
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return f"{kind or 'document ' + str(index + 1)}/{name or '(unnamed)'}"


def validate_manifests(
    docs: Iterable[Mapping[str, Any]], kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
) -> list[str]:
    """Validate every manifest offline against the strict Kubernetes schemas; return the problems.

    Each problem starts with ``Kind/name`` and names the field (``spec.replicas``...): wrong
    types, unknown fields, missing required fields, invalid enum values. A kind with no bundled
    schema (e.g. a CRD) is reported as a problem too, since it cannot be checked. Raises
    ``ValueError`` for a Kubernetes version kubernetes-validate has no schemas for.
    """
    schema_version = schema_version_for(kubernetes_version)
    problems: list[str] = []
    for index, document in enumerate(docs):
        if not isinstance(document, Mapping):
            problems.append(f"document {index + 1}: is a {type(document).__name__}, not a Kubernetes object")
            continue
        label = _label(index, document)
        api_version, kind = document.get("apiVersion"), document.get("kind")
        if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
            problems.append(f"{label}: apiVersion and kind are required strings; every manifest needs both")
            continue
        metadata = document.get("metadata")
        if not isinstance(metadata, dict) or not metadata.get("name"):
            problems.append(f"{label}: metadata.name is required; name the object")
        validator = _validator(schema_version, api_version, kind)
        if validator is None:
            problems.append(
                f"{label}: no schema for kind {kind} in {api_version} for Kubernetes {schema_version}; "
                "check apiVersion/kind (the API may be removed or misspelt)"
            )
            continue
        errors = sorted(validator.iter_errors(dict(document)), key=lambda e: [str(p) for p in e.absolute_path])
        problems.extend(f"{label}: {_describe_error(error)}" for error in errors)
    return problems
