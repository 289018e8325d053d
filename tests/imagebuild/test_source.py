"""checkout(): clone a repository and check out exactly one commit (real git, local repos)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from releases.imagebuild import SourceError, checkout
from releases.redaction import redact_url


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A repository with three commits on main (the last one on a tag) and one on a side branch."""
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    repo = tmp_path_factory.mktemp("upstream")
    _git(repo, "init", "-q", "-b", "main")
    commits = []
    for number in range(3):
        (repo / "version.txt").write_text(f"{number}\n")
        _git(repo, "add", "version.txt")
        _git(repo, "commit", "-q", "-m", f"commit {number}")
        commits.append(_git(repo, "rev-parse", "HEAD"))
    _git(repo, "tag", "v1.0.0")
    _git(repo, "checkout", "-q", "-b", "side", commits[0])
    (repo / "side.txt").write_text("side\n")
    _git(repo, "add", "side.txt")
    _git(repo, "commit", "-q", "-m", "side")
    commits.append(_git(repo, "rev-parse", "HEAD"))
    _git(repo, "checkout", "-q", "main")
    return repo, commits


@pytest.mark.parametrize("index", [0, 1, 2, 3], ids=["old", "middle", "tip", "other-branch"])
def test_checkout_file_url(repository: tuple[Path, list[str]], tmp_path: Path, index: int) -> None:
    repo, commits = repository
    dest = checkout(f"file://{repo}", commits[index], tmp_path / "src")
    assert dest == tmp_path / "src"
    assert _git(dest, "rev-parse", "HEAD") == commits[index]
    assert (dest / "version.txt").read_text() == f"{min(index, 2) if index < 3 else 0}\n"
    assert (dest / "side.txt").exists() == (index == 3)
    # Detached HEAD, not a branch.
    assert subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=dest).returncode != 0


def test_checkout_local_path_and_short_sha(repository: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, commits = repository
    dest = checkout(str(repo), commits[1][:10].upper(), tmp_path / "src")
    assert _git(dest, "rev-parse", "HEAD") == commits[1]
    assert (dest / "version.txt").read_text() == "1\n"


def test_unknown_commit(repository: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, _ = repository
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(SourceError) as info:
        checkout(f"file://{repo}", missing, tmp_path / "src")
    message = str(info.value)
    assert f"commit {missing} not found in file://{repo}" in message
    assert "push it or fix the release's commit_sha" in message


def test_unknown_repository(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read repository file:///nonexistent/repo"):
        checkout("file:///nonexistent/repo", "0123456789abcdef0123456789abcdef01234567", tmp_path / "src")


def test_bad_sha_and_non_empty_destination(repository: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, commits = repository
    with pytest.raises(SourceError, match="not a hexadecimal"):
        checkout(str(repo), "main", tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "file").write_text("x")
    with pytest.raises(SourceError, match="not empty"):
        checkout(str(repo), commits[0], tmp_path / "b")


def test_redact_url() -> None:
    assert redact_url("https://user:tok3n@github.com/o/r.git") == "https://github.com/o/r.git"
    assert redact_url("file:///srv/repo") == "file:///srv/repo"
