"""The BuildKit wrapper's pure parts, table-driven: the plain progress read into steps, the argv
(secrets by file only), the build network, and which platforms an engine runs. The real program
runs in tests/pipeline and tests/e2e."""

from __future__ import annotations

from pathlib import Path

import pytest

from releases.imagebuild.buildkit import (
    BuildSecret,
    ProgressReader,
    _classify,
    _secret_files,
    build_argv,
    engine_network,
)
from releases.imagebuild.emulation import binfmt_platforms, engine_platforms
from releases.imagebuild.errors import EmulationMissing, EngineUnavailable

BASE_DIGEST = "sha256:1ec1714bcde082adca6e9aba95ed8a6ea55f3d6963fa3e8cd56de311165b417c"
PLAIN = """\
#1 [internal] load build definition from Dockerfile
#1 sha256:4ff5e4ae6c1e7cbb42ac3c0c1bd5d2bf1b4c0bd1e5b4d3e8bd0ccf4c0d2a3b4c
#1 transferring dockerfile: 120B done
#1 DONE 0.0s

#5 [stage-1 1/3] FROM 127.0.0.1:5000/base/tiny:1@sha256:1ec1714bcde082adca6e9aba95ed8a6ea55f3d6963fa3e8cd56de311165b417c
#5 resolve 127.0.0.1:5000/base/tiny:1@sha256:1ec1714bcde082adca6e9aba95ed8a6ea55f3d6963fa3e8cd56de311165b417c done
#5 CACHED

#6 [stage-1 2/3] RUN uname -m > /arch.txt
#6 sha256:72c37f0ad6f16d2d3af53de7efc00353f4c7b39cdcc800a8c4fa2ee374a65a61
#6 DONE 1.3s

#7 [stage-1 3/3] RUN echo line1 && echo line2 >&2 && exit 3
#7 0.102 line1
#7 0.103 line2
#7 ERROR: executor failed running [/bin/sh -c echo line1 && echo line2 >&2 && exit 3]: exit code: 3
------
 > [stage-1 3/3] RUN echo line1 && echo line2 >&2 && exit 3:
------
executor failed running [/bin/sh -c echo line1 && echo line2 >&2 && exit 3]: exit code: 3
"""


def test_plain_progress_becomes_steps_with_cache_hits_durations_and_the_failing_output():
    reader = ProgressReader()
    shown = [reader.feed(line) for line in PLAIN.splitlines()]

    steps = {step.name: step for step in reader.steps}
    assert list(steps) == [
        f"[stage-1 1/3] FROM 127.0.0.1:5000/base/tiny:1@{BASE_DIGEST}",
        "[stage-1 2/3] RUN uname -m > /arch.txt",
        "[stage-1 3/3] RUN echo line1 && echo line2 >&2 && exit 3",
    ]
    first, second, third = steps.values()
    assert (first.cached, first.seconds) == (True, 0.0)
    assert (second.cached, second.seconds, second.error) == (False, 1.3, None)
    assert third.error == "executor failed running [/bin/sh -c echo line1 && echo line2 >&2 && exit 3]: exit code: 3"
    assert list(third.output) == ["line1", "line2"]
    assert reader.failed_step is third
    assert third.record() == {"step": third.name, "cached": False, "seconds": None, "error": third.error}
    # transfer noise (vertex digests, resolve lines) is left out of the build log
    assert not [line for line in shown if line and ("sha256:4ff5" in line or " resolve " in line)]
    assert reader.trailer[-1].startswith("executor failed running")


def test_argv_passes_secrets_by_file_and_asks_for_inline_cache(tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    files = _secret_files(
        [BuildSecret("npm_token", value="s3cr3t"), BuildSecret("ca", file=Path("/etc/ca.pem"))], private
    )

    argv = build_argv(
        "/usr/bin/docker",
        tmp_path,
        "Dockerfile",
        "linux/arm64",
        iidfile=tmp_path / "iid",
        labels={"org.opencontainers.image.version": "1.0.0"},
        build_args={"BASE_IMAGE": "b:1"},
        network="none",
        secret_files=files,
        cache_from=["r/app:0.9.0"],
    )

    assert "s3cr3t" not in " ".join(argv)
    assert (private / "secret-0").read_text() == "s3cr3t" and (private / "secret-0").stat().st_mode & 0o777 == 0o600
    assert argv[:5] == ["/usr/bin/docker", "build", "--progress=plain", "--platform", "linux/arm64"]
    token = f"id=npm_token,src={private / 'secret-0'}"
    assert argv[argv.index(token) - 1] == "--secret"
    assert "id=ca,src=/etc/ca.pem" in argv
    assert argv[argv.index("--network") : argv.index("--network") + 2] == ["--network", "none"]
    assert "BUILDKIT_INLINE_CACHE=1" in argv and "BASE_IMAGE=b:1" in argv
    assert argv[argv.index("--cache-from") : argv.index("--cache-from") + 2] == ["--cache-from", "r/app:0.9.0"]
    assert argv[argv.index("--file") + 1] == str(tmp_path / "Dockerfile") and argv[-1] == str(tmp_path)


@pytest.mark.parametrize(
    ("networks", "configured", "expected"),
    [
        (["host", "none"], None, ("none", "the engine has no bridge network")),
        (["bridge", "host", "none"], None, ("default", "the engine has a bridge network")),
        (["host", "none"], "host", ("host", "BUILD_NETWORK")),
        (["bridge"], "none", ("none", "BUILD_NETWORK")),
    ],
)
def test_build_network_follows_the_engine_unless_configured(networks, configured, expected):
    assert engine_network(networks, configured) == expected


def binfmt(tmp_path: Path, entries: dict[str, str]) -> Path:
    for name, text in entries.items():
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("entries", "emulated"),
    [
        (
            {"qemu-aarch64": "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n"},
            ("linux/arm64",),
        ),
        # without the F flag the interpreter is not found inside the build's container
        ({"qemu-aarch64": "enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: P\n"}, ()),
        ({"qemu-aarch64": "disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n"}, ()),
        ({}, ()),
    ],
)
def test_emulated_platforms_are_the_enabled_qemu_entries_with_the_f_flag(tmp_path, entries, emulated):
    assert binfmt_platforms(binfmt(tmp_path, entries)) == emulated


def test_an_engine_elsewhere_is_trusted_for_its_own_platform_only(tmp_path):
    entries = binfmt(tmp_path, {"qemu-aarch64": "enabled\nflags: PF\n"})
    local = engine_platforms("unix:///run/docker.sock", "x86_64", entries)
    remote = engine_platforms("tcp://builder:2376", "x86_64", entries)

    assert local.runnable == ("linux/amd64", "linux/386", "linux/arm64")
    assert local.missing(["linux/amd64", "linux/arm64/v8", "linux/s390x"]) == ["linux/s390x"]
    assert remote.missing(["linux/arm64"]) == ["linux/arm64"]


def read(text: str) -> ProgressReader:
    reader = ProgressReader()
    for line in text.splitlines():
        reader.feed(line)
    return reader


def test_an_engine_that_went_away_mid_build_is_transient_not_a_failed_step():
    reader = read(
        "#5 [stage-0 1/2] FROM 127.0.0.1:5000/base/tiny:1\n"
        "#5 ERROR: context canceled\n"
        "error: failed to solve: rpc error: code = Unavailable desc = transport is closing\n"
    )
    with pytest.raises(EngineUnavailable, match="lost the docker engine during the linux/arm64 build"):
        raise _classify("linux/arm64", reader, 1)


def test_a_build_the_engine_ended_without_an_image_id_is_transient():
    # what a benchmark run met: both images of a release at once, nothing else in the output
    reader = read("cannot write /tmp/bk-xvkud5xe/iid because server did not provide an image ID\n")
    with pytest.raises(EngineUnavailable, match="ended the linux/amd64 build without an image id"):
        raise _classify("linux/amd64", reader, 1)


def test_a_failed_step_is_a_failure_even_when_no_image_id_followed():
    reader = read(
        "#7 [2/2] RUN exit 3\n"
        "#7 ERROR: executor failed running [/bin/sh -c exit 3]: exit code: 3\n"
        "cannot write /tmp/bk-1/iid because server did not provide an image ID\n"
    )
    assert _classify("linux/amd64", reader, 1).step == "[2/2] RUN exit 3"


def test_the_failing_step_is_named_not_the_siblings_it_cancelled():
    reader = read(
        "#6 [assets 2/2] RUN sleep 5\n"
        "#6 ERROR: context canceled\n"
        "#7 [stage-1 2/2] RUN exit 4\n"
        "#7 ERROR: executor failed running [/bin/sh -c exit 4]: exit code: 4\n"
    )
    failure = _classify("linux/amd64", reader, 1)
    assert failure.step == "[stage-1 2/2] RUN exit 4" and failure.platform == "linux/amd64"
    assert str(failure).startswith("the linux/amd64 build failed at step [stage-1 2/2] RUN exit 4: executor failed")


def test_exec_format_error_names_the_missing_emulation():
    reader = read("#7 [2/2] RUN uname -m\n#7 ERROR: exec /bin/sh: exec format error\n")
    with pytest.raises(EmulationMissing, match="install qemu-user-static"):
        raise _classify("linux/arm64", reader, 1)
