"""Check that a chart's values configure the app's documented environment variables correctly.

Convention (the example chart in ``examples/chart`` follows it)::

    frontend:
      env:                  # NAME -> value, rendered as the container's env (values are strings)
        LOG_LEVEL: info
      requiredEnv: []       # names the operator must supply at install time
      envFromSecret: ""     # optional: an existing Secret whose keys become env vars (envFrom)
    backend:
      env:
        LOG_LEVEL: info
        DATABASE_URL: ""    # empty = not provided
      requiredEnv: [DATABASE_URL]

* A variable's ``scope`` says which components get it: ``frontend``, ``backend`` or ``both``.
* A variable is *provided* for a component when ``<component>.env.<NAME>`` is set to a
  non-empty value; it is *documented as required* when ``<component>.requiredEnv`` lists it.
  The chart's templates refuse to render when a ``requiredEnv`` name is neither set in
  ``env`` nor available through ``envFromSecret``.

Problems reported by :func:`check_environment`:

* a required variable, for a component of its scope, neither provided nor listed in
  ``requiredEnv``;
* a secret variable with a non-empty value in values.yaml (in any component): secrets are
  never shipped as chart defaults; list them in ``requiredEnv`` and supply them with
  ``envFromSecret`` or ``--set`` at install time;
* a name in ``env`` or ``requiredEnv`` that is not UPPER_SNAKE_CASE;
* ``env`` that is not a mapping, ``requiredEnv`` that is not a list of names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

COMPONENTS = ("frontend", "backend")
SCOPE_BOTH = "both"
ENV_KEY = "env"
REQUIRED_KEY = "requiredEnv"
#: UPPER_SNAKE_CASE, the spec's rule for variable names (the database checks the same pattern).
ENV_NAME_PATTERN = r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$"
ENV_NAME_RE = re.compile(ENV_NAME_PATTERN)


@dataclass(frozen=True)
class EnvVarSpec:
    """A documented environment variable (mirrors ``releases.models.EnvironmentVariable``)."""

    name: str
    required: bool = False
    secret: bool = False
    default_value: str = ""
    scope: str = SCOPE_BOTH  # "frontend" | "backend" | "both"


def components_for(scope: str) -> tuple[str, ...]:
    """``"both"`` -> ``("frontend", "backend")``; ``"frontend"`` -> ``("frontend",)``."""
    if scope == SCOPE_BOTH:
        return COMPONENTS
    if scope in COMPONENTS:
        return (scope,)
    raise ValueError(f"unknown scope {scope!r}; use one of frontend, backend, both")


def _is_set(value: Any) -> bool:
    return value is not None and value != ""


def _component_env(values: Mapping[str, Any], component: str, problems: list[str]) -> tuple[dict[str, Any], list[str]]:
    """``(env mapping, requiredEnv names)`` of one component; malformed parts become problems."""
    section = values.get(component)
    if section is None:
        return {}, []
    if not isinstance(section, Mapping):
        problems.append(f"{component}: must be a mapping (with env and requiredEnv), not {type(section).__name__}")
        return {}, []
    env = section.get(ENV_KEY)
    if env is None:
        env = {}
    elif not isinstance(env, Mapping):
        problems.append(f"{component}.{ENV_KEY}: must be a mapping NAME: value, not {type(env).__name__}")
        env = {}
    required = section.get(REQUIRED_KEY)
    if required is None:
        required = []
    elif not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        problems.append(f"{component}.{REQUIRED_KEY}: must be a list of variable names")
        required = [name for name in required if isinstance(name, str)] if isinstance(required, list) else []
    return dict(env), list(required)


def check_environment(values: Mapping[str, Any], variables: Iterable[EnvVarSpec]) -> list[str]:
    """Every problem in how ``values`` configure ``variables`` (see the module docstring)."""
    problems: list[str] = []
    envs: dict[str, dict[str, Any]] = {}
    required_lists: dict[str, list[str]] = {}
    for component in COMPONENTS:
        envs[component], required_lists[component] = _component_env(values, component, problems)
        for name in envs[component]:
            if not isinstance(name, str) or not ENV_NAME_RE.match(name):
                problems.append(
                    f"{component}.{ENV_KEY}.{name}: {name!r} is not UPPER_SNAKE_CASE; "
                    "rename it (e.g. LOG_LEVEL, DATABASE_URL)"
                )
        for name in required_lists[component]:
            if not ENV_NAME_RE.match(name):
                problems.append(
                    f"{component}.{REQUIRED_KEY}: {name!r} is not UPPER_SNAKE_CASE; rename it (e.g. DATABASE_URL)"
                )

    for spec in variables:
        try:
            scope_components = components_for(spec.scope)
        except ValueError as error:
            problems.append(f"{spec.name}: {error}")
            continue
        if spec.secret:
            for component in COMPONENTS:
                if _is_set(envs[component].get(spec.name)):
                    problems.append(
                        f"{component}.{ENV_KEY}.{spec.name}: secret variable {spec.name} has a default value in "
                        f"values.yaml; remove the value, list it in {component}.{REQUIRED_KEY} and supply it at "
                        f"install time ({component}.envFromSecret or --set)"
                    )
        if not spec.required:
            continue
        for component in scope_components:
            provided = _is_set(envs[component].get(spec.name))
            if not provided and spec.name not in required_lists[component]:
                problems.append(
                    f"{component}.{ENV_KEY}.{spec.name}: required variable {spec.name} is neither set in "
                    f"values.yaml nor listed in {component}.{REQUIRED_KEY}; "
                    + (
                        f"add it to {component}.{REQUIRED_KEY}"
                        if spec.secret
                        else f"set {component}.{ENV_KEY}.{spec.name} or add it to {component}.{REQUIRED_KEY}"
                    )
                )
    return problems
