"""checkout(): clone a repository and check out exactly one commit (real git, local repos)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from releases.imagebuild import BuildPathError, SourceError, build_paths, checkout, read_file_at
from releases.observability.redaction import redact_url


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


# -- build_paths: an image's context and Dockerfile stay inside the checkout --------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A checkout with frontend/ (Dockerfile, .dockerignore) and docker/Dockerfile.backend; secrets outside."""
    checkout = tmp_path / "source"
    (checkout / "frontend").mkdir(parents=True)
    (checkout / "frontend" / "Dockerfile").write_text("FROM scratch\n")
    (checkout / "frontend" / ".dockerignore").write_text("*.env\n")
    (checkout / "docker").mkdir()
    (checkout / "docker" / "Dockerfile.backend").write_text("FROM scratch\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "Dockerfile").write_text("FROM scratch\nCOPY / /\n")
    return checkout


def test_build_paths_inside_the_checkout(source: Path) -> None:
    real = source.resolve()
    assert build_paths(source, "frontend/", "Dockerfile") == (real / "frontend", real / "frontend" / "Dockerfile")
    (source / "Dockerfile").write_text("FROM scratch\n")
    assert build_paths(source, "", "") == (real, real / "Dockerfile")  # empty: the root and Dockerfile
    # The Dockerfile may leave the context as long as it stays in the repository.
    assert build_paths(source, "frontend", "../docker/Dockerfile.backend") == (
        real / "frontend",
        real / "docker" / "Dockerfile.backend",
    )


def test_links_that_stay_inside_the_checkout_are_followed(source: Path) -> None:
    (source / "web").symlink_to("frontend", target_is_directory=True)
    (source / "frontend" / "Dockerfile.prod").symlink_to("../docker/Dockerfile.backend")

    assert build_paths(source, "web", "Dockerfile.prod") == (
        source.resolve() / "frontend",
        source.resolve() / "docker" / "Dockerfile.backend",
    )


def test_absolute_paths_are_refused_both_at_once(source: Path) -> None:
    with pytest.raises(BuildPathError) as refused:
        build_paths(source, "/", "/etc/passwd")

    assert refused.value.problems == [
        "context_path '/' is absolute; give a path inside the repository (e.g. frontend/)",
        "dockerfile_path '/etc/passwd' is absolute; give a path inside the repository (e.g. Dockerfile)",
    ]
    assert isinstance(refused.value, SourceError)


def test_dotdot_escapes_are_refused(source: Path) -> None:
    with pytest.raises(BuildPathError) as refused:
        build_paths(source, "frontend/../..", "Dockerfile")
    assert refused.value.problems == [
        "context_path 'frontend/../..' leaves the repository with '..'; give a folder inside it (e.g. frontend/)"
    ]

    with pytest.raises(BuildPathError) as refused:
        build_paths(source, "frontend", "../../outside/Dockerfile")
    assert refused.value.problems == [
        "dockerfile_path '../../outside/Dockerfile' leaves the repository with '..' (it is relative to the "
        "context 'frontend'); give a Dockerfile inside the repository"
    ]


def test_links_out_of_the_checkout_are_refused_all_at_once(source: Path, tmp_path: Path) -> None:
    # Given a context folder, a Dockerfile and a .dockerignore that are links out of the checkout
    (source / "app").symlink_to(tmp_path / "outside", target_is_directory=True)
    (source / "frontend" / "Dockerfile.evil").symlink_to(tmp_path / "outside" / "Dockerfile")
    (source / "frontend" / ".dockerignore").unlink()
    (source / "frontend" / ".dockerignore").symlink_to("/proc/self/environ")

    with pytest.raises(BuildPathError) as refused:
        build_paths(source, "app", "Dockerfile")
    assert refused.value.problems == [
        f"context_path 'app' resolves outside the repository (through the symbolic link app -> {tmp_path}/outside); "
        "commit a real folder or fix the image's context_path",
        f"dockerfile_path 'Dockerfile' resolves outside the repository (through the symbolic link app -> "
        f"{tmp_path}/outside); commit the Dockerfile itself",
    ]

    with pytest.raises(BuildPathError) as refused:
        build_paths(source, "frontend", "Dockerfile.evil")
    assert refused.value.problems == [
        "frontend/.dockerignore is a symbolic link to /proc/self/environ, outside the repository; "
        "commit the file itself",
        "dockerfile_path 'Dockerfile.evil' resolves outside the repository (through the symbolic link "
        f"frontend/Dockerfile.evil -> {tmp_path}/outside/Dockerfile); commit the Dockerfile itself",
    ]


def test_missing_context_and_dockerfile(source: Path) -> None:
    with pytest.raises(BuildPathError) as refused:
        build_paths(source, "backend", "Dockerfile")
    assert refused.value.problems == [
        "context_path 'backend' is not a folder in the repository; fix the image's context_path",
        "dockerfile_path 'Dockerfile' (backend/Dockerfile in the repository) is not a file; fix the image's "
        "dockerfile_path (it is relative to the context) or the repository",
    ]


# read_file_at(): one file of one commit, nothing checked out -------------------------------------


@pytest.fixture(scope="module")
def layout_repository(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A commit with .release-registry.yaml and a link to it, then a commit without the file."""
    repo = tmp_path_factory.mktemp("layout-upstream")
    _git(repo, "init", "-q", "-b", "main")
    (repo / ".release-registry.yaml").write_text("chart:\n  path: helm/app\n")
    (repo / "linked.yaml").symlink_to(".release-registry.yaml")
    (repo / "big.yaml").write_text("x" * 2048)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "with layout")
    with_file = _git(repo, "rev-parse", "HEAD")
    _git(repo, "rm", "-q", ".release-registry.yaml")
    _git(repo, "commit", "-q", "-m", "without layout")
    return repo, with_file, _git(repo, "rev-parse", "HEAD")


def test_read_file_at_returns_the_file_of_that_commit_without_a_checkout(layout_repository, tmp_path):
    repo, with_file, _ = layout_repository

    data = read_file_at(f"file://{repo}", with_file, ".release-registry.yaml", tmp_path / "w", max_bytes=1024)

    assert data == b"chart:\n  path: helm/app\n"
    assert not (tmp_path / "w" / ".release-registry.yaml").exists()


def test_read_file_at_a_commit_without_the_file_is_none(layout_repository, tmp_path):
    repo, _, without = layout_repository

    assert read_file_at(f"file://{repo}", without, ".release-registry.yaml", tmp_path / "w", max_bytes=1024) is None


@pytest.mark.parametrize(
    ("path", "message"), [("linked.yaml", "is a symbolic link"), ("big.yaml", "over the limit of 1,024 bytes")]
)
def test_read_file_at_refuses_links_and_oversize_files(layout_repository, tmp_path, path, message):
    repo, with_file, _ = layout_repository

    with pytest.raises(SourceError, match=message):
        read_file_at(f"file://{repo}", with_file, path, tmp_path / "w", max_bytes=1024)


def test_read_file_at_an_unknown_commit_says_so(layout_repository, tmp_path):
    repo, _, _ = layout_repository

    with pytest.raises(SourceError, match="not found"):
        read_file_at(f"file://{repo}", "f" * 40, ".release-registry.yaml", tmp_path / "w", max_bytes=1024)


# -- reading one commit's subject, resolving a tag -------------------------------------------------


def test_commit_subject_is_read_from_a_local_clone_and_from_a_url(release_please_repo):
    from releases.imagebuild.source import commit_subject

    sha = release_please_repo.release("1.4.0", 43)
    release_please_repo.commit("feat: later work (#44)")

    assert commit_subject(str(release_please_repo.root), sha) == "chore(main): release 1.4.0 (#43)"
    assert commit_subject(release_please_repo.url, sha) == "chore(main): release 1.4.0 (#43)"


def test_commit_subject_of_an_unknown_commit_or_repository_says_which(release_please_repo, tmp_path):
    from releases.imagebuild.source import commit_subject

    release_please_repo.release("1.4.0", 43)
    with pytest.raises(SourceError, match="not found in"):
        commit_subject(release_please_repo.url, "c" * 40)
    with pytest.raises(SourceError, match="cannot read repository"):
        commit_subject(f"file://{tmp_path / 'nowhere'}", "c" * 40)


def test_resolve_tag_peels_annotated_tags(release_please_repo):
    from releases.imagebuild.source import resolve_tag

    annotated = release_please_repo.release("1.4.0", 43)
    lightweight = release_please_repo.release("1.5.0", 50, annotated=False)

    assert release_please_repo.tag_object("1.4.0") != annotated  # a tag object, peeled below
    assert resolve_tag(release_please_repo.url, "v1.4.0") == annotated
    assert resolve_tag(release_please_repo.url, "v1.5.0") == lightweight
    with pytest.raises(SourceError, match="tag v9.9.9 is not in .*push the tag"):
        resolve_tag(release_please_repo.url, "v9.9.9")
    with pytest.raises(SourceError, match="not a git tag name"):
        resolve_tag(release_please_repo.url, "--upload-pack=touch /tmp/x")
