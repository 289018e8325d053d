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
    assert "imported 0 release(s), 0 with the pull request their commit names; 3 already present" in out.getvalue()


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


# -- a realistic history: three years, 30 releases, the PR of each read from its tag's commit ---------

REPO_URL = "https://github.com/stianfro/threek8s"
# (version, date, release PR or None, how the release commit was merged)
HISTORY = [
    ("0.1.0", "2023-02-06", None, "manual"),  # cut by hand before Release Please was set up
    ("0.1.1", "2023-02-20", 4, "squash"),
    ("0.2.0", "2023-03-14", 9, "squash"),
    ("0.3.0", "2023-04-30", 15, "squash"),
    ("0.3.1", "2023-05-02", 17, "squash"),
    ("0.4.0", "2023-06-19", 24, "merge"),  # the repository allowed merge commits for a while
    ("0.5.0", "2023-08-01", 31, "merge"),
    ("0.5.1", "2023-08-09", 33, "squash"),
    ("0.6.0", "2023-10-11", 40, "squash"),
    ("0.7.0", "2023-12-04", 47, "squash"),
    ("1.0.0", "2024-01-15", 55, "squash"),
    ("1.0.1", "2024-01-22", 58, "squash"),
    ("1.1.0", "2024-03-05", 66, "squash"),
    ("1.2.0", "2024-04-29", 73, "squash"),
    ("1.2.1", "2024-05-03", 75, "squash"),
    ("1.3.0", "2024-07-16", 84, "squash"),
    ("1.4.0", "2024-09-09", 92, "squash"),
    ("1.4.1", "2024-09-30", None, "hotfix"),  # tagged on a hand-made hotfix commit
    ("1.5.0", "2024-11-25", 103, "squash"),
    ("2.0.0-rc.1", "2025-01-13", 110, "squash"),
    ("2.0.0", "2025-02-03", 114, "squash"),
    ("2.0.1", "2025-02-17", 118, "squash"),
    ("2.1.0", "2025-04-07", 127, "squash"),
    ("2.2.0", "2025-06-02", 136, "squash"),
    ("2.2.1", "2025-06-10", 139, "squash"),
    ("2.3.0", "2025-08-25", 148, "squash"),
    ("2.4.0", "2025-11-03", 157, "squash"),
    ("2.5.0", "2026-01-19", 166, "squash"),
    ("2.5.1", "2026-02-02", 169, "squash"),
    ("2.6.0", "2026-04-13", 178, "squash"),
]


def _release_section(index: int) -> str:
    version, date, pr, _style = HISTORY[index]
    if index == 0:
        heading = f"## {version} ({date})"
    else:
        previous = HISTORY[index - 1][0]
        heading = f"## [{version}]({REPO_URL}/compare/v{previous}...v{version}) ({date})"
    feature_pr = (pr or 1000 + index) - 1
    commit = f"{index:07x}"
    lines = [heading, "", ""]
    if version == "2.0.0":
        lines += [
            "### ⚠ BREAKING CHANGES",
            "",
            "* **chart:** values.frontend.image is now an object",
            "",
        ]
    kind = "Bug Fixes" if version.endswith((".1", ".2")) and not version.endswith(".0") else "Features"
    lines += [
        f"### {kind}",
        "",
        f"* **api:** change number {index} ([#{feature_pr}]({REPO_URL}/issues/{feature_pr})) "
        f"([{commit}]({REPO_URL}/commit/{commit}))",
        "",
    ]
    return "\n".join(lines) + "\n"


def realistic_changelog() -> str:
    return "# Changelog\n\n" + "\n".join(_release_section(i) for i in reversed(range(len(HISTORY))))


@pytest.fixture
def release_please_history(release_please_repo):
    """The repository of HISTORY: a feature PR then the release commit, tagged, for every release."""
    repo = release_please_repo
    for index, (version, date, pr, style) in enumerate(HISTORY):
        stamp = f"{date}T12:00:00+00:00"
        repo.commit(f"feat(api): change number {index} (#{(pr or 1000 + index) - 1})", date=stamp)
        subject = {
            "squash": f"chore(main): release {version} (#{pr})",
            "merge": f"Merge pull request #{pr} from stianfro/release-please--branches--main--components--threek8s",
            "manual": f"chore: release {version}",
            "hotfix": "fix: hotfix the backend's readiness probe",
        }[style]
        repo.release(version, pr, subject=subject, date=stamp, annotated=index % 2 == 0)
    (repo.root / "CHANGELOG.md").write_text(realistic_changelog())
    (repo.root / ".release-please-manifest.json").write_text(json.dumps({".": HISTORY[-1][0]}))
    return repo


def test_import_of_a_multi_year_changelog_fills_the_pr_of_every_release_commit_that_names_one(
    release_please_history, settings
):
    # Given a source repository URL that is not this clone: the clone given is what is read
    settings.SOURCE_REPOSITORY_URL = ""
    repo = release_please_history

    # When the whole history is imported
    out = io.StringIO()
    call_command(
        "import_changelog",
        str(repo.root / "CHANGELOG.md"),
        repository=str(repo.root),
        manifest=str(repo.root / ".release-please-manifest.json"),
        stdout=out,
    )

    # Then every release is there, on its tag's commit, with the PR that commit names
    imported = {r.version: r for r in ReleaseVersion.objects.all()}
    assert len(imported) == len(HISTORY) == 30
    for version, date, pr, _style in HISTORY:
        release = imported[version]
        assert release.commit_sha == git(repo.root, "rev-list", "-n", "1", f"v{version}")
        assert release.pr_number == pr, version
        assert str(release.release_date.date()) == date
    assert "imported 30 release(s), 28 with the pull request their commit names; 0 already present" in out.getvalue()
    assert "values.frontend.image is now an object" in imported["2.0.0"].changelog
