"""A chart may not reach outside its directory: load_chart, render_chart and package_chart refuse
symbolic links (every one listed at once) before reading through any of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from releases.charts import (
    ChartPackageError,
    RenderFailed,
    chart_path_problems,
    load_chart,
    package_chart,
    render_chart,
)

SECRET = "AWS_SECRET_ACCESS_KEY=hunter2\n"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A file of the worker, outside the chart, that must never be read."""
    path = tmp_path / "worker-secrets" / "env"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


def test_load_chart_refuses_a_symlinked_values_yaml_without_storing_its_content(
    example_chart: Path, secret_file: Path
) -> None:
    # Given values.yaml replaced by a link to a file of the worker
    values = example_chart / "values.yaml"
    values.unlink()
    values.symlink_to(secret_file)

    # When the chart is loaded
    chart = load_chart(example_chart, expected_name="threek8s", expected_app_version="1.0.0")

    # Then the link is the problem, and nothing of the file was read
    assert chart.problems == [
        f"values.yaml: is a symbolic link to {secret_file}, outside the chart directory; "
        "charts may not contain symbolic links, remove it or commit the file itself"
    ]
    assert chart.values == {}
    assert "hunter2" not in repr(chart)


def test_every_link_is_listed_at_once(example_chart: Path, secret_file: Path) -> None:
    (example_chart / "files").mkdir()
    (example_chart / "files" / "env").symlink_to("/proc/self/environ")
    (example_chart / "files" / "secret").symlink_to(secret_file)
    (example_chart / "templates" / "copy.yaml").symlink_to("frontend-service.yaml")  # stays inside
    (example_chart / ".helmignore").unlink()
    (example_chart / ".helmignore").symlink_to(secret_file)
    (example_chart / "ci").mkdir()
    (example_chart / "ci" / "etc").symlink_to("/etc", target_is_directory=True)

    chart = load_chart(example_chart, expected_name="threek8s", expected_app_version="1.0.0")

    assert chart.problems == [
        ".helmignore: is a symbolic link to "
        f"{secret_file}, outside the chart directory; charts may not contain symbolic links, "
        "remove it or commit the file itself",
        "ci/etc: is a symbolic link to /etc, outside the chart directory; charts may not contain "
        "symbolic links, remove it or commit the file itself",
        "files/env: is a symbolic link to /proc/self/environ, outside the chart directory; charts may not "
        "contain symbolic links, remove it or commit the file itself",
        f"files/secret: is a symbolic link to {secret_file}, outside the chart directory; charts may not "
        "contain symbolic links, remove it or commit the file itself",
        "templates/copy.yaml: is a symbolic link (to frontend-service.yaml); charts may not contain "
        "symbolic links, commit a copy of the file instead",
    ]
    assert "copy.yaml" not in chart.templates


def test_a_folder_link_loop_is_a_problem_not_a_crash(example_chart: Path) -> None:
    (example_chart / "templates" / "loop").symlink_to("..", target_is_directory=True)

    chart = load_chart(example_chart, expected_name="threek8s", expected_app_version="1.0.0")

    assert chart.problems == [
        "templates/loop: is a symbolic link (to ..); charts may not contain symbolic links, "
        "commit a copy of the file instead"
    ]
    assert chart.templates[0] == "_helpers.tpl"


def test_a_symlinked_templates_folder_is_listed_once(example_chart: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (example_chart / "templates").rename(outside)
    (example_chart / "templates").symlink_to(outside, target_is_directory=True)

    chart = load_chart(example_chart, expected_name="threek8s", expected_app_version="1.0.0")

    assert len(chart.problems) == 1
    assert chart.problems[0].startswith(f"templates: is a symbolic link to {outside}, outside the chart directory")
    assert chart.templates == []


def test_special_files_are_refused(example_chart: Path) -> None:
    os.mkfifo(example_chart / "templates" / "pipe.yaml")

    assert chart_path_problems(example_chart) == [
        "templates/pipe.yaml: is not a regular file (a FIFO, socket or device); remove it"
    ]


def test_package_chart_refuses_links_instead_of_storing_the_worker_environment(
    example_chart: Path, secret_file: Path
) -> None:
    (example_chart / "files").mkdir()
    (example_chart / "files" / "env").symlink_to("/proc/self/environ")
    (example_chart / "files" / "secret").symlink_to(secret_file)

    with pytest.raises(ChartPackageError) as refused:
        package_chart(example_chart)

    message = str(refused.value)
    assert message.startswith(f"{example_chart}: cannot be packaged: files/env: is a symbolic link to /proc/self/")
    assert f"files/secret: is a symbolic link to {secret_file}, outside the chart directory" in message


def test_render_chart_refuses_links_before_running_helm(helm_bin: str, example_chart: Path, secret_file: Path) -> None:
    # Given a template that prints a linked file, as helm would follow the link
    (example_chart / "files").mkdir()
    (example_chart / "files" / "env").symlink_to(secret_file)
    (example_chart / "templates" / "leak.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  env: {{ .Files.Get "files/env" | quote }}\n'
    )

    # When it is rendered, then helm never runs and the link is named
    with pytest.raises(RenderFailed) as refused:
        render_chart(helm_bin, example_chart)

    assert str(refused.value) == (
        f"chart refused before rendering: files/env: is a symbolic link to {secret_file}, outside the chart "
        "directory; charts may not contain symbolic links, remove it or commit the file itself"
    )
    assert refused.value.returncode is None
    assert "hunter2" not in refused.value.stderr


def test_a_chart_without_links_still_packages_and_renders(helm_bin: str, example_chart: Path) -> None:
    assert chart_path_problems(example_chart) == []
    assert package_chart(example_chart).name == "threek8s"
    assert render_chart(helm_bin, example_chart)
