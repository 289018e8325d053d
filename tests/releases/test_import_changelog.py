"""Importing a Release Please CHANGELOG.md: one draft release per version, pinned to its tag's commit."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from releases.models import ReleaseVersion

pytestmark = pytest.mark.django_db

CHANGELOG = """# Changelog

## [1.2.0](https://github.com/o/r/compare/v1.1.0...v1.2.0) (2026-11-20)


### Features

* charts page ([#9](https://github.com/o/r/issues/9)) ([abc1234](https://github.com/o/r/commit/abc1234))

## [1.1.0](https://github.com/o/r/compare/v1.0.0...v1.1.0) (2026-10-02)


### Bug Fixes

* timeout ([#5](https://github.com/o/r/issues/5)) ([def5678](https://github.com/o/r/commit/def5678))

## 1.0.0 (2026-09-01)


### Features

* first release ([0a1b2c3](https://github.com/o/r/commit/0a1b2c3))
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def project(tmp_path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for version in ("1.0.0", "1.2.0"):  # 1.1.0's tag is missing
        git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", version)
        git(repo, "tag", f"v{version}")
    (repo / "CHANGELOG.md").write_text(CHANGELOG)
    (repo / ".release-please-manifest.json").write_text(json.dumps({".": "1.2.0"}))
    return repo


def test_imports_each_tagged_version_and_reports_the_rest(project):
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 release"):
        call_command(
            "import_changelog",
            str(project / "CHANGELOG.md"),
            repository=str(project),
            manifest=str(project / ".release-please-manifest.json"),
            stdout=out,
            stderr=io.StringIO(),
        )

    assert sorted(ReleaseVersion.objects.values_list("version", flat=True)) == ["1.0.0", "1.2.0"]
    release = ReleaseVersion.objects.get(version="1.2.0")
    assert release.commit_sha == git(project, "rev-list", "-n", "1", "v1.2.0")
    assert "charts page" in release.changelog and "timeout" not in release.changelog
    assert str(release.release_date.date()) == "2026-11-20"
    assert "3/3" in out.getvalue()


def test_second_import_adds_nothing(project):
    git(project, "tag", "v1.1.0")
    call_command("import_changelog", str(project / "CHANGELOG.md"), repository=str(project), stdout=io.StringIO())
    out = io.StringIO()
    call_command("import_changelog", str(project / "CHANGELOG.md"), repository=str(project), stdout=out)
    assert ReleaseVersion.objects.count() == 3
    assert "imported 0 release(s); 3 already present" in out.getvalue()


def test_manifest_that_disagrees_is_refused_before_anything_is_written(project):
    (project / ".release-please-manifest.json").write_text(json.dumps({".": "1.3.0"}))
    with pytest.raises(CommandError, match="manifest says . is at 1.3.0"):
        call_command(
            "import_changelog",
            str(project / "CHANGELOG.md"),
            repository=str(project),
            manifest=str(project / ".release-please-manifest.json"),
            stdout=io.StringIO(),
        )
    assert not ReleaseVersion.objects.exists()
