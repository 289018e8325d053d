"""stage_bases: every stage's base, table-driven (plain Python)."""

from __future__ import annotations

import pytest

from releases.imagebuild import DockerfileError
from releases.imagebuild.stages import Stage, stage_bases

THREEK8S_SHAPED = """# syntax=docker/dockerfile:1
ARG NODE=node:20-alpine
ARG REGISTRY
FROM --platform=$BUILDPLATFORM ${NODE} AS build
RUN --mount=type=cache,target=/root/.npm npm ci
RUN cat <<'EOF' > /docker-entrypoint.sh
FROM not-a-stage:inside-a-heredoc
EOF
FROM ${REGISTRY:-docker.io}/nginx:1.27 AS runtime
COPY --from=build /app /usr/share/nginx/html
FROM runtime
"""


def test_threek8s_shaped_dockerfile_lists_every_stage_and_skips_heredoc_bodies() -> None:
    assert stage_bases(THREEK8S_SHAPED, {"REGISTRY": "127.0.0.1:5000"}) == [
        Stage(0, "build", "node:20-alpine", "$BUILDPLATFORM", 4, False),
        Stage(1, "runtime", "127.0.0.1:5000/nginx:1.27", None, 9, False),
        Stage(2, None, "127.0.0.1:5000/nginx:1.27", None, 11, True, from_stage="runtime"),
    ]


def test_unset_arg_takes_its_default_form() -> None:
    stages = stage_bases(THREEK8S_SHAPED, {})
    assert stages[1].base == "docker.io/nginx:1.27"
    assert stages[2].base == "docker.io/nginx:1.27" and stages[2].from_stage == "runtime"


CASES = [
    ("scratch", "FROM scratch\n", {}, ["scratch"]),
    ("lower-case and AS", "from alpine:3.20 as Base\nFROM base\n", {}, ["alpine:3.20", "alpine:3.20"]),
    ("build arg overrides default", "ARG B=a:1\nFROM $B\n", {"B": "b:2"}, ["b:2"]),
    ("undeclared build arg ignored", "FROM ${B:-x:1}\n", {"B": "b:2"}, ["x:1"]),
    ("escape directive and continuation", "# escape=`\nFROM `\n  alpine:3.20 `\n  AS a\n", {}, ["alpine:3.20"]),
    ("ARG after FROM is not global", "FROM a:1\nARG B=b:1\nFROM ${B:-c:1}\n", {}, ["a:1", "c:1"]),
]


@pytest.mark.parametrize(("text", "build_args", "bases"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_stage_bases(text: str, build_args: dict[str, str], bases: list[str]) -> None:
    assert [stage.base for stage in stage_bases(text, build_args)] == bases


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RUN true\n", "no FROM"),
        ("ARG B\nFROM $B\n", "line 2: FROM $B names no image"),
        ("FROM --pull a:1\n", "line 1: unknown FROM flag --pull"),
        ("FROM a:1 b\n", "line 1: expected FROM"),
    ],
)
def test_bad_from_is_refused_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message.replace("$", r"\$")):
        stage_bases(text, {})
