"""Check out the exact commit of a release's repository into a build directory."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from releases.imagebuild.errors import SourceError
from releases.redaction import redact_url

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
    shown_url = redact_url(repository_url)
    if not _SHA_RE.fullmatch(sha):
        raise SourceError(f"commit_sha {commit_sha!r} is not a hexadecimal git object name (7-64 digits)")
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise SourceError(f"checkout destination {dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)

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
    full_sha = resolved.stdout.strip()
    result = _git(["-c", "advice.detachedHead=false", "checkout", "-q", "--detach", full_sha], dest, timeout)
    if result.returncode != 0:
        raise SourceError(f"git checkout of {full_sha} failed: {_tail(result.stderr)}")
    head = _git(["rev-parse", "HEAD"], dest, timeout).stdout.strip()
    if not head.startswith(sha):
        raise SourceError(f"checked out {head} but {sha} was asked for")
    return dest
