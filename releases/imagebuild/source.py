"""Check out the exact commit of a release's repository; find an image's build context in it."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

from releases.imagebuild.errors import BuildPathError, SourceError
from releases.observability.redaction import redact_url

_SHA_RE = re.compile(r"[0-9a-f]{7,64}")
_FULL_SHA_LENGTHS = (40, 64)  # SHA-1 and SHA-256 object names


def _git(args: list[str], cwd: Path | None, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",  # never wait for a password on a TTY
            "GIT_ASKPASS": "true",
            "GIT_CONFIG_NOSYSTEM": "1",
            "LC_ALL": "C",
        }
    )
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise SourceError("git is not installed on this worker") from exc
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"git {args[0]} timed out after {timeout:.0f}s") from exc


def _tail(text: str, lines: int = 5) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def checkout(repository_url: str, commit_sha: str, dest: Path, *, timeout: float = 600.0) -> Path:
    """Fetch ``commit_sha`` from ``repository_url`` into ``dest`` and check it out (detached HEAD).

    ``repository_url`` may be any URL git understands (``https://``, ``ssh://``, ``file://``) or a
    local path. ``dest`` must not exist or be empty. A full SHA is fetched shallowly (depth 1) when
    the server allows fetching by object name; otherwise, and for abbreviated SHAs, all branches and
    tags are fetched and the commit is looked up among them.

    Raises :class:`SourceError` when the repository cannot be read or the commit is not in it.
    Returns ``dest``.
    """
    sha = commit_sha.strip().lower()
    if not _SHA_RE.fullmatch(sha):
        raise SourceError(f"commit_sha {commit_sha!r} is not a hexadecimal git object name (7-64 digits)")
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise SourceError(f"checkout destination {dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)

    full_sha = _fetch_commit(repository_url, sha, dest, timeout)
    result = _git(["-c", "advice.detachedHead=false", "checkout", "-q", "--detach", full_sha], dest, timeout)
    if result.returncode != 0:
        raise SourceError(f"git checkout of {full_sha} failed: {_tail(result.stderr)}")
    head = _git(["rev-parse", "HEAD"], dest, timeout).stdout.strip()
    if not head.startswith(sha):
        raise SourceError(f"checked out {head} but {sha} was asked for")
    return dest


def _fetch_commit(repository_url: str, sha: str, dest: Path, timeout: float) -> str:
    """Fetch ``sha`` from ``repository_url`` into the empty folder ``dest``; return its full object name.

    A full SHA is fetched shallowly (depth 1) when the server allows fetching by object name;
    otherwise, and for abbreviated SHAs, all branches and tags are fetched and the commit is
    looked up among them.
    """
    shown_url = redact_url(repository_url)
    for args in (["init", "-q", "."], ["remote", "add", "origin", repository_url]):
        result = _git(args, dest, timeout)
        if result.returncode != 0:
            raise SourceError(f"git {args[0]} failed in {dest}: {_tail(result.stderr)}")

    fetched = False
    if len(sha) in _FULL_SHA_LENGTHS:
        result = _git(["fetch", "-q", "--depth=1", "--no-tags", "origin", sha], dest, timeout)
        fetched = result.returncode == 0
    if not fetched:
        result = _git(
            ["fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
            dest,
            timeout,
        )
        if result.returncode != 0:
            raise SourceError(f"cannot read repository {shown_url}: {_tail(result.stderr)}")

    resolved = _git(["rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}"], dest, timeout)
    if resolved.returncode != 0:
        raise SourceError(f"commit {sha} not found in {shown_url}; push it or fix the release's commit_sha")
    return resolved.stdout.strip()


def read_file_at(
    repository_url: str, commit_sha: str, path: str, workdir: Path, *, max_bytes: int, timeout: float = 120.0
) -> bytes | None:
    """The bytes of the file ``path`` (relative to the repository root) at ``commit_sha``, or
    ``None`` when the commit has no such file. Nothing is checked out: the commit is fetched
    (shallowly when the server allows it) into ``workdir``, which must not exist or be empty.

    Raises :class:`SourceError` when the repository or the commit cannot be read, or when
    ``path`` is a symbolic link, a folder or a submodule (commit it as a regular file), or larger
    than ``max_bytes``.
    """
    sha = commit_sha.strip().lower()
    if not _SHA_RE.fullmatch(sha):
        raise SourceError(f"commit_sha {commit_sha!r} is not a hexadecimal git object name (7-64 digits)")
    workdir = Path(workdir)
    if workdir.exists() and any(workdir.iterdir()):
        raise SourceError(f"destination {workdir} is not empty")
    workdir.mkdir(parents=True, exist_ok=True)
    full_sha = _fetch_commit(repository_url, sha, workdir, timeout)
    listed = _git(["ls-tree", "-z", full_sha, "--", path], workdir, timeout)
    if listed.returncode != 0:
        raise SourceError(f"git ls-tree of {full_sha[:12]} failed: {_tail(listed.stderr)}")
    if not listed.stdout:
        return None
    mode, kind, _rest = listed.stdout.split(" ", 2)
    if kind != "blob" or mode not in ("100644", "100755"):
        what = {"120000": "a symbolic link", "160000": "a submodule"}.get(mode, f"a {kind}")
        raise SourceError(f"{path} is {what} at commit {full_sha[:12]}; commit it as a regular file")
    size = _git(["cat-file", "-s", f"{full_sha}:{path}"], workdir, timeout)
    if size.returncode != 0:
        raise SourceError(f"git cat-file of {path} failed: {_tail(size.stderr)}")
    if int(size.stdout.strip()) > max_bytes:
        raise SourceError(
            f"{path} is {int(size.stdout.strip()):,} bytes at commit {full_sha[:12]}, over the limit of "
            f"{max_bytes:,} bytes; keep it to the release's configuration"
        )
    try:
        blob = subprocess.run(
            ["git", "cat-file", "blob", f"{full_sha}:{path}"],
            cwd=workdir,
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"git cat-file timed out after {timeout:.0f}s") from exc
    if blob.returncode != 0:
        raise SourceError(f"git cat-file of {path} failed: {_tail(blob.stderr.decode(errors='replace'))}")
    return blob.stdout


def _local_repository(repository_url: str) -> Path | None:
    """The folder of a repository given as a local path (not a URL), else ``None``."""
    if "://" in repository_url or not repository_url:
        return None
    path = Path(repository_url)
    return path if path.is_dir() else None


def commit_subject(repository_url: str, commit_sha: str, *, timeout: float = 30.0) -> str:
    """The subject (first line of the message) of ``commit_sha`` in ``repository_url``.

    A local clone is read in place (``git log``); a URL is read with a shallow, blob-less fetch of
    that one commit into a temporary bare repository (all branches and tags, still without blobs,
    when the server refuses fetching by object name). Raises :class:`SourceError` when the
    repository cannot be read or the commit is not in it.
    """
    sha = commit_sha.strip().lower()
    shown_url = redact_url(repository_url)
    if not _SHA_RE.fullmatch(sha):
        raise SourceError(f"commit_sha {commit_sha!r} is not a hexadecimal git object name (7-64 digits)")
    local = _local_repository(repository_url)
    if local is not None:
        return _subject(local, sha, shown_url, timeout)
    with tempfile.TemporaryDirectory(prefix="commit-subject-") as tmp:
        bare = Path(tmp)
        for args in (["init", "-q", "--bare", "."], ["remote", "add", "origin", repository_url]):
            result = _git(args, bare, timeout)
            if result.returncode != 0:
                raise SourceError(f"git {args[0]} failed: {_tail(result.stderr)}")
        fetched = False
        if len(sha) in _FULL_SHA_LENGTHS:
            result = _git(["fetch", "-q", "--depth=1", "--filter=blob:none", "--no-tags", "origin", sha], bare, timeout)
            fetched = result.returncode == 0
        if not fetched:
            result = _git(
                [
                    "fetch",
                    "-q",
                    "--filter=blob:none",
                    "origin",
                    "+refs/heads/*:refs/heads/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                bare,
                timeout,
            )
            if result.returncode != 0:
                raise SourceError(f"cannot read repository {shown_url}: {_tail(result.stderr)}")
        return _subject(bare, sha, shown_url, timeout)


def _subject(repository: Path, sha: str, shown_url: str, timeout: float) -> str:
    result = _git(["log", "-1", "--format=%s", f"{sha}^{{commit}}", "--"], repository, timeout)
    if result.returncode != 0:
        raise SourceError(f"commit {sha} not found in {shown_url}: {_tail(result.stderr)}")
    return result.stdout.strip()


def resolve_tag(repository_url: str, tag: str, *, timeout: float = 30.0) -> str:
    """The commit ``refs/tags/<tag>`` names in ``repository_url`` (``git ls-remote``, no fetch).

    An annotated tag is peeled (its ``^{}`` line: the commit, not the tag object). Raises
    :class:`SourceError` when the repository cannot be read or has no such tag.
    """
    shown_url = redact_url(repository_url)
    if not tag or tag.startswith("-") or any(ch in tag for ch in " ~^:?*[\\\0") or ".." in tag:
        raise SourceError(f"{tag!r} is not a git tag name")
    ref = f"refs/tags/{tag}"
    result = _git(["ls-remote", "--tags", "--", repository_url, ref, f"{ref}^{{}}"], None, timeout)
    if result.returncode != 0:
        raise SourceError(f"cannot read repository {shown_url}: {_tail(result.stderr)}")
    named: dict[str, str] = {}
    for line in result.stdout.splitlines():
        object_name, _, name = line.partition("\t")
        named[name.strip()] = object_name.strip().lower()
    commit = named.get(f"{ref}^{{}}") or named.get(ref)
    if not commit:
        raise SourceError(f"tag {tag} is not in {shown_url}; push the tag (git push origin {tag})")
    return commit


DEFAULT_DOCKERFILE = "Dockerfile"
DOCKERIGNORE = ".dockerignore"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _lexical_problem(field: str, value: str, example: str) -> str | None:
    """Why ``value`` cannot name a path inside the checkout before any file is looked at."""
    if "\0" in value:
        return f"{field} {value!r} contains a NUL character; fix the image's {field}"
    path = PurePosixPath(value)
    if path.is_absolute():
        return f"{field} {value!r} is absolute; give a path inside the repository (e.g. {example})"
    return None


def _link_out(checkout: Path, real_root: str, relative: PurePosixPath) -> str:
    """`` (through the symbolic link a/b -> /etc)`` for the first link of ``relative`` that leads out."""
    current = checkout
    for part in relative.parts:
        current = current / part
        if current.is_symlink() and not _inside(os.path.realpath(current), real_root):
            shown = current.relative_to(checkout).as_posix()
            return f" (through the symbolic link {shown} -> {os.readlink(current)})"
    return ""


def build_paths(checkout: Path, context_path: str, dockerfile_path: str) -> tuple[Path, Path]:
    """The build context folder and the Dockerfile of an image, both inside ``checkout``.

    ``context_path`` is relative to the repository root (empty: the root); ``dockerfile_path``
    is relative to the context (empty: ``Dockerfile``) and may leave the context with ``..``
    as long as it stays in the repository (the Docker SDK then sends its content). Both are
    returned resolved (symbolic links followed), ready for
    :func:`~releases.imagebuild.engine.build_platform_image`.

    The Docker SDK follows symbolic links in exactly three places: the context folder itself,
    the Dockerfile, and the context's .dockerignore (whose content it sends to the engine when
    the Dockerfile lies outside the context); links inside the context are sent as links and the
    engine resolves them within the context. So those three must resolve inside the checkout:
    links that stay inside are fine (a context ``web -> frontend``), links out are refused.

    Raises :class:`BuildPathError` listing every problem: an absolute path, a ``..`` that
    leaves the checkout, a symbolic link leading out of it, a missing context folder or
    Dockerfile.
    """
    checkout = Path(checkout)
    real_root = os.path.realpath(checkout)
    context_rel = PurePosixPath(context_path.strip() or ".")
    dockerfile_rel = PurePosixPath(dockerfile_path.strip() or DEFAULT_DOCKERFILE)

    # Judged on the written paths first, before any link: "a/../.." leaves the checkout whatever "a" is.
    context_problem = _lexical_problem("context_path", context_path, "frontend/")
    dockerfile_problem = _lexical_problem("dockerfile_path", dockerfile_path, "Dockerfile")
    context_norm = PurePosixPath(os.path.normpath(context_rel))
    if context_problem is None and context_norm.parts[:1] == ("..",):
        context_problem = (
            f"context_path {context_path!r} leaves the repository with '..'; give a folder inside it (e.g. frontend/)"
        )
    # The Dockerfile is relative to the context; with an unusable context, judge it on its own.
    dockerfile_norm = PurePosixPath(
        os.path.normpath((context_norm if context_problem is None else ".") / dockerfile_rel)
    )
    if dockerfile_problem is None and dockerfile_norm.parts[:1] == ("..",):
        dockerfile_problem = (
            f"dockerfile_path {dockerfile_path!r} leaves the repository with '..' (it is relative to the context "
            f"{context_path or '.'!r}); give a Dockerfile inside the repository"
        )
    problems = [problem for problem in (context_problem, dockerfile_problem) if problem]
    if problems:
        raise BuildPathError(problems)

    context_dir = checkout / context_norm
    real_context = os.path.realpath(context_dir)
    if not _inside(real_context, real_root):
        problems.append(
            f"context_path {context_path!r} resolves outside the repository"
            f"{_link_out(checkout, real_root, context_norm)}; commit a real folder or fix the image's context_path"
        )
    elif not os.path.isdir(real_context):
        problems.append(
            f"context_path {context_path!r} is not a folder in the repository; fix the image's context_path"
        )
    else:
        dockerignore = Path(real_context) / DOCKERIGNORE
        if dockerignore.is_symlink() and not _inside(os.path.realpath(dockerignore), real_root):
            shown = (context_norm / DOCKERIGNORE).as_posix()
            problems.append(
                f"{shown} is a symbolic link to {os.readlink(dockerignore)}, outside the repository; "
                "commit the file itself"
            )

    real_dockerfile = os.path.realpath(checkout / dockerfile_norm)
    if not _inside(real_dockerfile, real_root):
        problems.append(
            f"dockerfile_path {dockerfile_path!r} resolves outside the repository"
            f"{_link_out(checkout, real_root, dockerfile_norm)}; commit the Dockerfile itself"
        )
    elif not os.path.isfile(real_dockerfile):
        problems.append(
            f"dockerfile_path {dockerfile_path!r} ({dockerfile_norm.as_posix()} in the repository) is not a file; "
            "fix the image's dockerfile_path (it is relative to the context) or the repository"
        )
    if problems:
        raise BuildPathError(problems)
    return Path(real_context), Path(real_dockerfile)


def commit_time(checkout_dir: Path, commit_sha: str, *, timeout: float = 30.0) -> int:
    """The committer time of ``commit_sha`` (Unix seconds) in a checkout: what a reproducible build
    clamps its timestamps to. Raises :class:`SourceError` when git cannot tell."""
    result = _git(["show", "-s", "--format=%ct", commit_sha], Path(checkout_dir), timeout)
    text = result.stdout.strip()
    if result.returncode != 0 or not text.isdigit():
        raise SourceError(f"cannot read the commit time of {commit_sha[:12]}: {_tail(result.stderr)}")
    return int(text)
