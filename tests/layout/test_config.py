"""``.release-registry.yaml``: the defaults, what a file overrides, and every problem of a bad one."""

from __future__ import annotations

import pytest

from releases.layout import LAYOUT_FILE, LayoutInvalid, ReleaseLayout, default_layout, parse_layout

DEFAULTS = default_layout("chart/", {"frontend": "threek8s-frontend", "backend": "threek8s-backend"})

REAL_PROJECT = """\
# Where the release registry finds our components.
chart:
  path: helm/threek8s
images:
  frontend:
    name: frontend
    context: frontend/
    dockerfile: Dockerfile
    values: frontend.image
  backend:
    name: backend
    context: backend/
    dockerfile: docker/Dockerfile.prod
    build_args: {PYTHON_VERSION: "3.12", WORKERS: 4}
    values: backend.image
"""


def test_a_project_without_the_file_gets_the_spec_defaults():
    layout = parse_layout(None, defaults=DEFAULTS)

    assert layout.chart_path == "chart/"
    assert layout.names() == {"frontend": "threek8s-frontend", "backend": "threek8s-backend"}
    assert layout.image("backend").context == "backend/" and layout.image("backend").dockerfile == "Dockerfile"
    assert layout.image("frontend").values is None
    assert layout.source == f"defaults (no {LAYOUT_FILE})"


def test_a_real_project_layout_overrides_names_paths_args_and_values():
    layout = parse_layout(REAL_PROJECT, defaults=DEFAULTS, source=f"{LAYOUT_FILE} at abc")

    assert layout.chart_path == "helm/threek8s"
    assert layout.names() == {"frontend": "frontend", "backend": "backend"}
    backend = layout.image("backend")
    assert (backend.context, backend.dockerfile, backend.values) == (
        "backend/",
        "docker/Dockerfile.prod",
        "backend.image",
    )
    assert backend.build_args == {"PYTHON_VERSION": "3.12", "WORKERS": "4"}
    assert layout.component_of("frontend") == "frontend" and layout.component_of("threek8s-frontend") is None


def test_missing_keys_take_the_defaults():
    layout = parse_layout("images:\n  backend:\n    name: api\n", defaults=DEFAULTS)

    assert layout.names() == {"frontend": "threek8s-frontend", "backend": "api"}
    assert layout.image("backend").context == "backend/"
    assert layout.chart_path == "chart/"


def test_the_stored_form_gives_back_the_same_layout():
    layout = parse_layout(REAL_PROJECT, defaults=DEFAULTS)

    assert ReleaseLayout.from_json(layout.to_json(), defaults=DEFAULTS) == layout
    assert ReleaseLayout.from_json({}, defaults=DEFAULTS) == DEFAULTS


def test_every_problem_is_listed_at_once_naming_the_key():
    text = """\
chart: {path: /srv/chart, name: other}
images:
  frontend: {nmae: web, name: Web_UI, values: "frontend..image", build_args: {"1BAD": x, LIST: [1]}}
  backend: {context: ../../etc, dockerfile: 3}
  worker: {name: worker}
"""
    with pytest.raises(LayoutInvalid) as refused:
        parse_layout(text, defaults=DEFAULTS)

    problems = refused.value.problems
    assert all(problem.startswith(f"{LAYOUT_FILE}: ") for problem in problems)
    text = "\n".join(problems)
    for expected in (
        "chart.name: unknown key; the keys allowed here are path",
        "images.worker: unknown key; the keys allowed here are backend, frontend",
        "images.frontend.nmae: unknown key",
        "images.frontend.name: 'Web_UI' is not allowed here; use lowercase letters",
        "images.frontend.values: 'frontend..image' is not allowed here",
        "images.frontend.build_args: '1BAD' is not allowed here",
        "images.frontend.build_args.LIST: is a list, not a string or number",
        "images.backend.dockerfile: is 3, not a string",
        "chart.path: '/srv/chart' is absolute",
        "images.backend.context: '../../etc' contains '..'",
    ):
        assert expected in text, text
    assert len(problems) == 10


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("images: {frontend: {name: app}, backend: {name: app}}", "both named 'app'"),
        ("images: {frontend: {values: app.image}, backend: {values: app.image}}", "both take their image from values"),
        ("- a list\n", "must be a mapping"),
        ("chart: [unclosed\n", "invalid YAML at line"),
        (b"\xff\xfe", "is not UTF-8"),
    ],
)
def test_unusable_files_are_refused_saying_what_to_do(text, named):
    with pytest.raises(LayoutInvalid) as refused:
        parse_layout(text, defaults=DEFAULTS)

    assert named in refused.value.problems[0]


def test_an_alias_bomb_is_refused_before_it_expands():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
    )
    with pytest.raises(LayoutInvalid, match="aliases"):
        parse_layout(bomb, defaults=DEFAULTS)


def test_an_empty_file_is_the_defaults():
    assert parse_layout("# nothing yet\n", defaults=DEFAULTS, source="x").names() == DEFAULTS.names()
