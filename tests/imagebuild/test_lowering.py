"""lower_dockerfile: a table of heredoc cases, each checked as text and built by the real engine.

The pure half asserts the generated context files byte for byte (the script BuildKit 1.4 would hand
to the shell, or the file COPY would write) and that every lowered Dockerfile keeps its line
numbers. The engine half builds each case's lowered Dockerfile with Debian's ``docker`` 20.10 CLI
(``DOCKER_BUILDKIT=1``, ``--network none``) against the tests' dockerd (BuildKit 0.8, Dockerfile
frontend 1.2) on a busybox base, and reads the files the heredocs produced out of the image:
exact bytes and mode. One case also builds for linux/arm64 under qemu.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from releases.imagebuild import DockerfileError
from releases.imagebuild.lowering import (
    LOWERED_DIR,
    LoweredDockerfile,
    UnsupportedDockerfile,
    lower_dockerfile,
)
from releases.sandbox.tiny_base import BaseImage
from tests.fixtures.dockerd import RunningDockerd
from tests.fixtures.services import service_missing

DOCKER_CLI = "/usr/bin/docker"  # Debian's 20.10 CLI: drives the engine's BuildKit (the docker 28 CLI cannot)
P = f"{LOWERED_DIR}/Dockerfile"


@dataclass(frozen=True)
class Case:
    id: str
    body: str  # follows "FROM <base>" on line 1
    files: dict[str, bytes]  # the generated context files, exactly
    image: dict[str, tuple[bytes, int]]  # path in the image -> (bytes, mode)
    lowered_lines: dict[int, str] = field(default_factory=dict)  # line -> the lowered instruction
    platforms: tuple[str, ...] = ("linux/amd64",)
    arm64_image: dict[str, tuple[bytes, int]] = field(default_factory=dict)


CASES = [
    Case(
        "run-heredoc-script",
        "RUN <<EOF\necho hello > /out\necho $((1 + 2)) >> /out\nEOF\n",
        {f"{P}/run-2.sh": b"echo hello > /out\necho $((1 + 2)) >> /out\n"},
        {"/out": (b"hello\n3\n", 0o644)},
        {2: f"RUN --mount=type=bind,source={P}/run-2.sh,target=/dev/pipes/run-2.sh . /dev/pipes/run-2.sh"},
    ),
    Case(
        "run-cat-quoted-delimiter-writes-entrypoint",
        "RUN cat <<'EOF' > /docker-entrypoint.sh && chmod 755 /docker-entrypoint.sh\n"
        '#!/bin/sh\nset -e\necho "starting $APP_NAME" $1\nexec "$@"\nEOF\n',
        {
            f"{P}/run-2.sh": b"cat <<'EOF' > /docker-entrypoint.sh && chmod 755 /docker-entrypoint.sh\n"
            b'#!/bin/sh\nset -e\necho "starting $APP_NAME" $1\nexec "$@"\nEOF'
        },
        {"/docker-entrypoint.sh": (b'#!/bin/sh\nset -e\necho "starting $APP_NAME" $1\nexec "$@"\n', 0o755)},
    ),
    Case(
        "run-cat-unquoted-delimiter-expands-at-run-time",
        "ENV GREETING=hi\nRUN cat <<EOF > /greeting\n$GREETING \\$HOME $(echo sub)\nEOF\n",
        {f"{P}/run-3.sh": b"cat <<EOF > /greeting\n$GREETING \\$HOME $(echo sub)\nEOF"},
        {"/greeting": (b"hi $HOME sub\n", 0o644)},
    ),
    Case(
        "run-dash-delimiter-strips-tabs",
        "RUN cat <<-EOF > /tabs\n\tindented\n\t\tdeeper\n  spaces stay\n\tEOF\n",
        {f"{P}/run-2.sh": b"cat <<-EOF > /tabs\n\tindented\n\t\tdeeper\n  spaces stay\nEOF"},
        {"/tabs": (b"indented\ndeeper\n  spaces stay\n", 0o644)},
    ),
    Case(
        "run-two-heredocs-on-one-line",
        "ENV X=1\nRUN cat <<A > /a && cat <<'B' > /b\none $X\nA\ntwo $X\nB\n",
        {f"{P}/run-3.sh": b"cat <<A > /a && cat <<'B' > /b\none $X\nA\ntwo $X\nB"},
        {"/a": (b"one 1\n", 0o644), "/b": (b"two $X\n", 0o644)},
    ),
    Case(
        "run-heredoc-with-shebang-is-executed",
        'RUN <<EOF\n#!/bin/sh\necho "$0 $#" > /self\nEOF\n',
        {f"{P}/run-2/EOF": b'#!/bin/sh\necho "$0 $#" > /self\n'},
        {"/self": (b"/dev/pipes/EOF 0\n", 0o644)},
        {2: f"RUN --mount=type=bind,source={P}/run-2,target=/dev/pipes /dev/pipes/EOF"},
    ),
    Case(
        "run-keeps-shell-flags-and-mounts",
        'SHELL ["/bin/sh", "-e", "-c"]\n'
        "RUN --mount=type=cache,target=/cache \\\n    <<EOF\necho cached > /cache/x\ncat /cache/x > /from-cache\n"
        "case $- in *e*) echo errexit > /shell-flags;; esac\nEOF\n",
        {
            f"{P}/run-3.sh": b"echo cached > /cache/x\ncat /cache/x > /from-cache\n"
            b"case $- in *e*) echo errexit > /shell-flags;; esac\n"
        },
        {"/from-cache": (b"cached\n", 0o644), "/shell-flags": (b"errexit\n", 0o644)},
        {
            3: f"RUN --mount=type=cache,target=/cache --mount=type=bind,source={P}/run-3.sh,"
            "target=/dev/pipes/run-3.sh . /dev/pipes/run-3.sh"
        },
    ),
    Case(
        "run-heredoc-runs-on-the-target-platform",
        'ARG TARGETARCH\nRUN <<EOF\necho "$TARGETARCH $(uname -m)" > /arch\nEOF\n',
        {f"{P}/run-3.sh": b'echo "$TARGETARCH $(uname -m)" > /arch\n'},
        {"/arch": (b"amd64 x86_64\n", 0o644)},
        platforms=("linux/amd64", "linux/arm64"),
        arm64_image={"/arch": (b"arm64 aarch64\n", 0o644)},
    ),
    Case(
        "copy-quoted-delimiter-is-literal",
        "COPY <<'EOF' /etc/motd\nHello $USER \\n ${X:-y}\nEOF\n",
        {f"{P}/copy-2/EOF": b"Hello $USER \\n ${X:-y}\n"},
        {"/etc/motd": (b"Hello $USER \\n ${X:-y}\n", 0o644)},
        {2: f"COPY {P}/copy-2/EOF /etc/motd"},
    ),
    Case(
        "copy-unquoted-delimiter-resolves-escapes",
        "COPY <<EOF /etc/escaped\nback\\slash \\$HOME costs $ 5\nEOF\n",
        {f"{P}/copy-2/EOF": b"backslash $HOME costs $ 5\n"},
        {"/etc/escaped": (b"backslash $HOME costs $ 5\n", 0o644)},
    ),
    Case(
        "copy-chmod-two-heredocs-into-a-directory",
        "COPY --chmod=755 <<EOF <<-'TWO' /opt/\nfirst\nEOF\n\tsecond\n\tTWO\n",
        {f"{P}/copy-2/EOF": b"first\n", f"{P}/copy-2/TWO": b"second\n"},
        {"/opt/EOF": (b"first\n", 0o755), "/opt/TWO": (b"second\n", 0o755)},
        {2: f"COPY --chmod=755 {P}/copy-2/EOF {P}/copy-2/TWO /opt/"},
    ),
    Case(
        "add-heredoc-is-copied",
        "ADD <<EOF /added.txt\nadded\nEOF\n",
        {f"{P}/copy-2/EOF": b"added\n"},
        {"/added.txt": (b"added\n", 0o644)},
        {2: f"COPY {P}/copy-2/EOF /added.txt"},
    ),
    Case(
        "empty-heredoc-is-an-empty-file-as-written",
        "RUN cat <<EOF > /empty\nEOF\nCOPY <<EOF /empty-copy\nEOF\n",
        {f"{P}/run-2.sh": b"cat <<EOF > /empty\nEOF", f"{P}/copy-4/EOF": b""},
        {"/empty": (b"", 0o644), "/empty-copy": (b"", 0o644)},
    ),
    Case(
        "body-lines-that-look-like-instructions-stay-in-the-body",
        "RUN cat <<'EOF' > /not-instructions\nFROM scratch\n# not a comment here\nRUN \\\nEOF\n",
        {f"{P}/run-2.sh": b"cat <<'EOF' > /not-instructions\nFROM scratch\n# not a comment here\nRUN \\\nEOF"},
        {"/not-instructions": (b"FROM scratch\n# not a comment here\nRUN \\\n", 0o644)},
    ),
]

ESCAPE_CASE = Case(
    "escape-directive-continuation-and-lower-case",
    "run echo start > /esc `\n  # a comment inside the continuation\n  && cat <<'EOF' >> /esc\nbody `still body\nEOF\n",
    {f"{P}/run-4.sh": b"echo start > /esc   && cat <<'EOF' >> /esc\nbody `still body\nEOF"},
    {"/esc": (b"start\nbody `still body\n", 0o644)},
)


def _text(case: Case, base: str) -> str:
    if case is ESCAPE_CASE:
        return f"# syntax=docker/dockerfile:1\n# escape=`\nFROM {base}\n{case.body}"
    return f"FROM {base}\n{case.body}"


ALL_CASES = [*CASES, ESCAPE_CASE]


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.id)
def test_lowering_writes_exactly_the_script_or_file_buildkit_would(case: Case) -> None:
    text = _text(case, "busybox")
    lowered = lower_dockerfile(text)

    assert lowered.files == case.files
    assert len(lowered.dockerfile.splitlines()) == len(text.splitlines()), "line numbers are kept"
    lines = lowered.dockerfile.splitlines()
    for number, expected in case.lowered_lines.items():
        assert lines[number - 1] == expected
    assert "<<" not in lowered.dockerfile
    assert all(path.startswith(f"{LOWERED_DIR}/") for path in lowered.files)
    assert len(lowered.notes) >= 1 and all(note.startswith("Dockerfile:") for note in lowered.notes)


def test_a_dockerfile_without_heredocs_is_left_as_it_is() -> None:
    text = "FROM busybox AS build\nRUN --mount=type=cache,target=/c echo hi \\\n  && true\nCOPY a /a\n"
    lowered = lower_dockerfile(text)
    assert lowered.dockerfile == text
    assert lowered.files == {} and lowered.notes == [] and not lowered.changed


def test_syntax_line_is_dropped_and_escape_directive_moves_to_the_first_line() -> None:
    text = "# syntax=docker/dockerfile:1.7\n# escape=`\nFROM busybox\nRUN echo `\n  hi\n"
    lowered = lower_dockerfile(text)
    assert lowered.dockerfile == "# escape=`\n\nFROM busybox\nRUN echo `\n  hi\n"
    assert lowered.notes == [
        "Dockerfile:1: # syntax=docker/dockerfile:1.7 served by the engine's built-in frontend "
        "(Dockerfile 1.2) with heredocs lowered; the line is dropped"
    ]


def test_files_are_named_after_the_dockerfile_path() -> None:
    lowered = lower_dockerfile("FROM busybox\nRUN <<EOF\ntrue\nEOF\n", dockerfile_path="docker/prod.Dockerfile")
    assert list(lowered.files) == [f"{LOWERED_DIR}/docker_prod.Dockerfile/run-2.sh"]
    assert lowered.notes[0].startswith("docker/prod.Dockerfile:2: RUN <<EOF")


REFUSED = [
    ("copy-link", "FROM busybox\nCOPY --link a /a\n", [(2, "COPY --link")]),
    ("add-link", "FROM busybox\nADD --link a /a\n", [(2, "ADD --link")]),
    ("add-checksum", "FROM busybox\nADD --checksum=sha256:00 https://example.com/x /x\n", [(2, "ADD --checksum")]),
    ("add-git", "FROM busybox\nADD https://github.com/moby/buildkit.git#v0.10.1 /src\n", [(2, "a git repository")]),
    ("add-git-ssh", "FROM busybox\nADD git@github.com:moby/buildkit.git /src\n", [(2, "a git repository")]),
    ("run-network", "FROM busybox\nRUN --network=host wget x\n", [(2, "RUN --network")]),
    ("run-security", "FROM busybox\nRUN --security=insecure true\n", [(2, "RUN --security")]),
    ("copy-parents", "FROM busybox\nCOPY --parents a/b /x/\n", [(2, "COPY --parents")]),
    ("copy-exclude", "FROM busybox\nCOPY --exclude=*.md . /x/\n", [(2, "COPY --exclude")]),
    ("secret-env", "FROM busybox\nRUN --mount=type=secret,id=t,env=TOKEN true\n", [(2, "env=")]),
    (
        "labs-syntax",
        "# syntax=docker/dockerfile:1.7-labs\nFROM busybox\n",
        [(1, "# syntax=docker/dockerfile:1.7-labs")],
    ),
    ("custom-frontend", "# syntax=example.com/my/frontend:2\nFROM busybox\n", [(1, "example.com/my/frontend")]),
    ("heredoc-in-cmd", "FROM busybox\nCMD cat <<EOF\n", [(2, "heredoc <<EOF in CMD")]),
    ("onbuild-heredoc", "FROM busybox\nONBUILD RUN <<EOF\ntrue\nEOF\n", [(2, "ONBUILD RUN with a heredoc")]),
    (
        "copy-heredoc-with-variable",
        "FROM busybox\nARG V=1\nCOPY <<EOF /v\nversion ${V}\nEOF\n",
        [(3, "expands ${V} at build time")],
    ),
    ("copy-heredoc-from-stage", "FROM busybox\nCOPY --from=x <<EOF /v\nv\nEOF\n", [(2, "--from with a heredoc")]),
    (
        "heredoc-under-old-syntax",
        "# syntax=docker/dockerfile:1.2\nFROM busybox\nRUN <<EOF\ntrue\nEOF\n",
        [(3, "heredocs are Dockerfile 1.4")],
    ),
    ("unterminated", "FROM busybox\nRUN <<EOF\ntrue\n", [(2, "unterminated heredoc")]),
    ("healthcheck-start-interval", "FROM busybox\nHEALTHCHECK --start-interval=1s CMD true\n", [(2, "HEALTHCHECK")]),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_syntax_the_engine_cannot_honour_is_refused_naming_the_line(text: str, expected: list[tuple[int, str]]) -> None:
    with pytest.raises(UnsupportedDockerfile) as refused:
        lower_dockerfile(text)
    problems = refused.value.problems
    assert [problem.line for problem in problems] == [line for line, _ in expected]
    for problem, (_, feature) in zip(problems, expected, strict=True):
        assert feature in f"{problem.feature}: {problem.remedy}"
        assert problem.remedy
        assert f"Dockerfile:{problem.line}: {problem.feature}" in str(refused.value)


def test_every_problem_is_reported_at_once() -> None:
    text = (
        "# syntax=example.com/frontend:1\nFROM busybox\nCOPY --link a /a\nRUN --network=none true\n"
        "COPY <<EOF /x\n$HOME\nEOF\n"
    )
    with pytest.raises(UnsupportedDockerfile) as refused:
        lower_dockerfile(text)
    assert [(problem.line, problem.feature.split()[0]) for problem in refused.value.problems] == [
        (1, "#"),
        (3, "COPY"),
        (4, "RUN"),
        (5, "COPY"),
    ]


@pytest.mark.parametrize(
    "syntax",
    [
        "docker/dockerfile:1",
        "docker/dockerfile:1.4",
        "docker.io/docker/dockerfile:1.7.1",
        "docker/dockerfile:1.4@sha256:" + "a" * 64,
    ],
)
def test_stable_1x_syntax_lines_are_served_by_the_built_in_frontend(syntax: str) -> None:
    lowered = lower_dockerfile(f"# syntax={syntax}\nFROM busybox\nRUN <<EOF\ntrue\nEOF\n")
    assert lowered.dockerfile.startswith("\nFROM busybox\n")


def test_write_files_keeps_modes_and_refuses_a_context_with_a_directory_of_that_name(tmp_path: Path) -> None:
    lowered = lower_dockerfile(_text(CASES[5], "busybox") + "COPY <<EOF /x\nx\nEOF\n")
    written = lowered.write_files(tmp_path)
    modes = {path.relative_to(tmp_path).as_posix(): path.stat().st_mode & 0o777 for path in written}
    assert modes == {f"{P}/run-2/EOF": 0o755, f"{P}/copy-6/EOF": 0o644, f"{P}/Dockerfile": 0o644}
    assert (tmp_path / lowered.build_file).read_text() == lowered.dockerfile
    assert lowered.write_files(tmp_path) == written, "a second platform's build rewrites the same files"
    (tmp_path / LOWERED_DIR / "theirs.txt").write_text("the repository's own file")
    with pytest.raises(DockerfileError, match="already has .release-registry-lowered"):
        lowered.write_files(tmp_path)


def test_dockerignore_keeps_the_lowered_files_in_the_context() -> None:
    lowered = lower_dockerfile("FROM busybox\nRUN <<EOF\ntrue\nEOF\n")
    assert lowered.dockerignore(None) is None
    assert lowered.dockerignore("*\n!app/\n") == (
        f"*\n!app/\n\n# release registry: lowered heredocs\n!{LOWERED_DIR}\n!{LOWERED_DIR}/**\n"
    )
    assert LoweredDockerfile(dockerfile="FROM x\n").dockerignore("*\n") is None
    assert lowered.dockerignore(lowered.dockerignore("*\n")) is None, "appended once"


# --- the real engine ------------------------------------------------------------------------------


def _arm64_emulation() -> bool:
    return os.uname().machine == "aarch64" or Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists()


def _build(
    dockerd: RunningDockerd,
    lowered: LoweredDockerfile,
    context: Path,
    platform: str,
    tag: str,
    dockerignore: str | None,
) -> None:
    if not os.access(DOCKER_CLI, os.X_OK):
        service_missing(f"{DOCKER_CLI} (Debian's docker.io 20.10 CLI) is not installed; run bin/setup")
    context.mkdir(parents=True, exist_ok=True)
    if dockerignore is not None:
        (context / ".dockerignore").write_text(dockerignore)
    lowered.write_files(context)
    dockerfile = context / lowered.build_file
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DOCKER_BUILDKIT": "1", "DOCKER_HOST": dockerd.base_url}
    env["HOME"] = str(context.parent)
    result = subprocess.run(
        [DOCKER_CLI, "build", "--network", "none", "--platform", platform, "--progress", "plain"]
        + ["-f", str(dockerfile), "-t", tag, str(context)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"build failed:\n{lowered.dockerfile}\n{result.stderr[-3000:]}"


def _image_files(dockerd: RunningDockerd, tag: str, paths: list[str]) -> dict[str, tuple[bytes, int]]:
    client = dockerd.client()
    container = client.containers.create(tag, command=["true"], network_disabled=True)
    try:
        found = {}
        for path in paths:
            stream, _ = container.get_archive(path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.next()
                assert member is not None and member.isfile(), f"{path} is not a regular file in the image"
                handle = tar.extractfile(member)
                assert handle is not None
                found[path] = (handle.read(), member.mode & 0o7777)
        return found
    finally:
        container.remove(force=True)
        client.close()


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.id)
def test_lowered_dockerfile_builds_on_the_engine_and_writes_the_exact_files(
    case: Case, running_dockerd: RunningDockerd, multiarch_base_image: BaseImage, tmp_path: Path
) -> None:
    # Given the case's Dockerfile on the busybox base, lowered
    lowered = lower_dockerfile(_text(case, multiarch_base_image.reference))
    for platform in case.platforms:
        if platform == "linux/arm64" and not _arm64_emulation():
            service_missing("no arm64 emulation (qemu-aarch64 in binfmt_misc): run bin/setup as root")
        tag = f"lowering-{uuid.uuid4().hex[:12]}"
        # When the engine's BuildKit builds it for the platform
        _build(running_dockerd, lowered, tmp_path / platform.replace("/", "-"), platform, tag, None)
        # Then the files the heredocs wrote are exactly what BuildKit 1.4 would have written
        expected = case.arm64_image if platform == "linux/arm64" else case.image
        assert _image_files(running_dockerd, tag, list(expected)) == expected


def test_a_dockerignore_that_excludes_everything_still_sends_the_lowered_files(
    running_dockerd: RunningDockerd, multiarch_base_image: BaseImage, tmp_path: Path
) -> None:
    lowered = lower_dockerfile(
        f"FROM {multiarch_base_image.reference}\nCOPY <<'EOF' /kept\nkept\nEOF\nRUN <<EOF\ncat /kept > /ran\nEOF\n"
    )
    tag = f"lowering-{uuid.uuid4().hex[:12]}"
    _build(running_dockerd, lowered, tmp_path / "ctx", "linux/amd64", tag, "*\n")
    assert _image_files(running_dockerd, tag, ["/kept", "/ran"]) == {
        "/kept": (b"kept\n", 0o644),
        "/ran": (b"kept\n", 0o644),
    }


def test_no_mount_stub_of_the_lowering_lands_in_the_image(
    running_dockerd: RunningDockerd, multiarch_base_image: BaseImage, tmp_path: Path
) -> None:
    lowered = lower_dockerfile(f"FROM {multiarch_base_image.reference}\nRUN <<EOF\necho x > /x\nEOF\n")
    tag = f"lowering-{uuid.uuid4().hex[:12]}"
    _build(running_dockerd, lowered, tmp_path / "ctx", "linux/amd64", tag, None)
    client = running_dockerd.client()
    try:
        saved = b"".join(client.images.get(tag).save())
    finally:
        client.close()
    names: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(saved)) as image:
        for member in image.getmembers():
            if member.name.endswith("layer.tar"):
                handle = image.extractfile(member)
                assert handle is not None
                with tarfile.open(fileobj=io.BytesIO(handle.read())) as layer:
                    names += layer.getnames()
    assert "x" in names
    assert not [name for name in names if "pipes" in name or "release-registry" in name]
