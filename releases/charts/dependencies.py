"""Resolve a chart's dependencies the way ``helm dependency build`` does, pinned by Chart.lock.

:func:`build_dependencies` checks Chart.lock against Chart.yaml (every mismatch named), then runs
real ``helm dependency build`` in an isolated helm home (no operator's repositories, cache or
registry logins leak in or out) against the declared repositories: ``oci://`` registries (plain
HTTP only for loopback hosts and the configured insecure hosts) and ``http(s)://`` chart
repositories (added to the isolated home first, as ``helm dependency build`` with a lock file
requires). The archives land in ``charts/``, where :func:`~releases.charts.package.package_chart`
picks them up, and each is recorded with its sha256.

Refused, with what to do: a dependency from a ``file://`` or ``@alias`` repository (it would read
outside the release's chart, or the worker's own configuration); a chart with dependencies but
no Chart.lock (the release must pin what it ships); a Chart.lock that does not lock exactly the
dependencies of Chart.yaml, or whose digest helm finds out of sync.

Commit authors are not trusted, so neither are the hosts they name: before helm runs, every
repository's host is held to :class:`~releases.charts.hosts.DependencyHosts` (the
``CHART_DEPENDENCY_HOSTS`` allowlist, or else public addresses only plus the registry and its
insecure hosts; see :mod:`.hosts` for the rule and its limits). A refused host is never contacted,
and with any problem nothing at all is fetched. An ``http(s)`` repository's index.yaml may put a
chart's archive on another host: the URL helm would download each locked version from is held to
the same rule, and helm then builds from that checked index (``--skip-refresh``), not a new one.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml

from releases.charts.chartfile import ChartDependency
from releases.charts.hosts import DependencyHosts
from releases.charts.yamlio import YamlExpansionError, describe_yaml_error, load_yaml
from releases.oci.digest import sha256_digest
from releases.oci.names import is_loopback

LOCK_FILE = "Chart.lock"
CHARTS_DIR = "charts"
MAX_LOCK_BYTES = 64 * 1024
BUILD_TIMEOUT = 300.0
OUTPUT_LIMIT = 2000
_FETCHED_SCHEMES = ("oci", "http", "https")
_ADVICE = "run `helm dependency update` in the chart folder and commit Chart.lock"


@dataclass(frozen=True)
class LockedDependency:
    """A dependency as Chart.lock pins it, and the archive ``helm dependency build`` fetched for it
    (``archive_digest``: ``sha256:<hex>`` of ``charts/<name>-<version>.tgz``; empty for a chart
    vendored unpacked in ``charts/``)."""

    name: str
    version: str
    repository: str
    archive_digest: str = ""


@dataclass
class DependencyBuild:
    """What :func:`build_dependencies` did: ``problems`` is empty when every dependency is in ``charts/``."""

    locked: list[LockedDependency] = field(default_factory=list)
    lock_digest: str = ""  # Chart.lock's own ``digest:`` (of Chart.yaml's dependencies and the lock)
    problems: list[str] = field(default_factory=list)

    def locked_as(self, name: str) -> LockedDependency | None:
        return next((locked for locked in self.locked if locked.name == name), None)


def helm_environment(home: Path) -> dict[str, str]:
    """The environment for helm with its cache, configuration, data and registry logins under ``home``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HELM_")}
    for variable, sub in (("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"), ("HELM_DATA_HOME", "data")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[variable] = str(home / sub)
    env["HELM_REGISTRY_CONFIG"] = str(home / "config" / "registry.json")
    env["HELM_REPOSITORY_CONFIG"] = str(home / "config" / "repositories.yaml")
    env["HELM_REPOSITORY_CACHE"] = str(home / "cache" / "repository")
    return env


def _trim(text: str, chart_dir: Path) -> str:
    text = text.replace(str(chart_dir.resolve()), "chart").replace(str(chart_dir), "chart").strip()
    return text if len(text) <= OUTPUT_LIMIT else "..." + text[-OUTPUT_LIMIT:]


def _repository_problems(dependencies: Sequence[ChartDependency], hosts: DependencyHosts) -> list[str]:
    problems = []
    for dependency in dependencies:
        repository = dependency.repository
        if not repository:
            continue  # vendored in charts/; helm checks it is there
        scheme = urlsplit(repository).scheme.lower()
        if scheme not in _FETCHED_SCHEMES or not urlsplit(repository).netloc:
            problems.append(
                f"Chart.yaml: dependency {dependency.name}: repository {repository!r} is not a chart repository "
                "this registry fetches from; use an oci://, https:// or http:// repository (file:// and @alias "
                "repositories read outside the release's chart), or vendor the chart in charts/"
            )
        elif refusal := hosts.refusal(repository):
            problems.append(f"Chart.yaml: dependency {dependency.name}: repository {repository} {refusal}")
    return problems


def _read_lock(chart_dir: Path, problems: list[str]) -> dict[str, Any] | None:
    path = chart_dir / LOCK_FILE
    if path.is_symlink() or not path.is_file():
        return None
    if path.stat().st_size > MAX_LOCK_BYTES:
        problems.append(f"{LOCK_FILE}: is over {MAX_LOCK_BYTES // 1024} KiB; {_ADVICE}")
        return {}
    try:
        lock = load_yaml(path.read_text(encoding="utf-8"))
    except (YamlExpansionError, yaml.YAMLError) as error:
        problems.append(f"{LOCK_FILE}: invalid YAML at {describe_yaml_error(error)}; {_ADVICE}")
        return {}
    except UnicodeDecodeError:
        problems.append(f"{LOCK_FILE}: is not UTF-8 text; {_ADVICE}")
        return {}
    entries = lock.get("dependencies") if isinstance(lock, dict) else None
    if (
        not isinstance(lock, dict)
        or not isinstance(lock.get("digest"), str)
        or not isinstance(entries, list)
        or not all(isinstance(e, dict) and e.get("name") and e.get("version") for e in entries)
    ):
        problems.append(f"{LOCK_FILE}: must hold a digest and a list of dependencies with name and version; {_ADVICE}")
        return {}
    return lock


def _lock_problems(dependencies: Sequence[ChartDependency], lock: dict[str, Any]) -> list[str]:
    """Every way the lock's entries differ from Chart.yaml's dependencies, by name and repository."""
    problems = []
    locked = {str(entry["name"]): str(entry.get("repository") or "") for entry in lock["dependencies"]}
    declared = {dependency.name: dependency.repository for dependency in dependencies}
    for name, repository in declared.items():
        if name not in locked:
            problems.append(f"{LOCK_FILE}: does not lock dependency {name} of Chart.yaml; {_ADVICE}")
        elif locked[name].rstrip("/") != repository.rstrip("/"):
            problems.append(
                f"{LOCK_FILE}: locks dependency {name} from {locked[name] or '(no repository)'} but Chart.yaml "
                f"takes it from {repository or '(no repository)'}; {_ADVICE}"
            )
    for name in sorted(set(locked) - set(declared)):
        problems.append(f"{LOCK_FILE}: locks {name}, which Chart.yaml does not declare; {_ADVICE}")
    return problems


def _plain_http(dependencies: Iterable[ChartDependency], insecure_hosts: Iterable[str]) -> tuple[bool, list[str]]:
    """Whether helm must fetch the OCI dependencies over plain HTTP; a problem when they mix both."""
    insecure = {host.lower() for host in insecure_hosts}
    hosts = {
        urlsplit(d.repository).netloc.lower() for d in dependencies if urlsplit(d.repository).scheme.lower() == "oci"
    }
    plain = {host for host in hosts if is_loopback(host) or host in insecure}
    if plain and plain != hosts:
        return False, [
            "Chart.yaml: dependencies come from OCI registries over plain HTTP "
            f"({', '.join(sorted(plain))}) and over HTTPS ({', '.join(sorted(hosts - plain))}); helm fetches them "
            "all one way, so take them from registries reached the same way"
        ]
    return bool(plain), []


def _same_version(listed: object, locked: str) -> bool:
    """Whether an index entry's version is the one helm takes for the lock's exact version (a
    leading ``v`` and build metadata aside, as semver constraints compare them)."""
    return str(listed).removeprefix("v").partition("+")[0] == locked.removeprefix("v").partition("+")[0]


def _index_entries(index_file: Path) -> dict[str, Any] | None:
    """``entries`` of the index.yaml ``helm repo add`` cached, or ``None`` when it cannot be read."""
    try:
        index = None if index_file.is_symlink() else load_yaml(index_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    entries = index.get("entries") if isinstance(index, dict) else None
    return entries if isinstance(entries, dict) else None


def _download_problems(lock: dict[str, Any], indexes: dict[str, Path], hosts: DependencyHosts) -> list[str]:
    """The archive URLs the checked index.yaml of each ``http(s)`` repository gives for the locked
    versions (helm downloads ``urls[0]``, relative to the repository), held to the hosts' rule."""
    problems = []
    read: dict[str, dict[str, Any] | None] = {}  # an index is read once, however many charts it gives
    for entry in lock.get("dependencies", []):
        repository = str(entry.get("repository") or "").rstrip("/")
        if repository not in indexes:
            continue
        name, version = str(entry["name"]), str(entry["version"])
        if repository not in read:
            read[repository] = _index_entries(indexes[repository])
        entries = read[repository]
        if entries is None:  # unchecked is unfetched
            problems.append(
                f"chart repository {repository}: its index.yaml cannot be read to check where {name} {version} is "
                "downloaded from; check the dependency's repository URL"
            )
            continue
        versions = entries.get(name)
        if not isinstance(versions, list):
            continue  # helm says the chart is not there
        for listed in versions:
            if not isinstance(listed, dict) or not _same_version(listed.get("version"), version):
                continue
            urls = listed.get("urls")
            if not isinstance(urls, list) or not urls:
                continue
            url = urljoin(repository + "/", str(urls[0]))
            if urlsplit(url).scheme.lower() not in _FETCHED_SCHEMES:
                refusal = "is not an http(s) or oci URL; fix the repository's index.yaml"
            else:
                refusal = hosts.refusal(url)
            if refusal:
                problems.append(
                    f"{LOCK_FILE}: dependency {name} {version}: chart repository {repository} has it downloaded "
                    f"from {url}, and that URL {refusal}"
                )
    return problems


def _run(helm_bin: str, args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_bin, *args], env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def build_dependencies(
    helm_bin: str | os.PathLike[str],
    chart_dir: Path,
    dependencies: Sequence[ChartDependency],
    *,
    helm_home: Path,
    insecure_hosts: Iterable[str] = (),
    allowed_hosts: Iterable[str] = (),
    trusted_hosts: Iterable[str] = (),
    timeout: float = BUILD_TIMEOUT,
) -> DependencyBuild:
    """Fetch the dependencies Chart.lock pins into ``chart_dir/charts/`` (see the module docstring).

    ``allowed_hosts`` is the allowlist of repository hosts (``CHART_DEPENDENCY_HOSTS``); without
    one, only public hosts and ``trusted_hosts`` (``host[:port]`` the operator trusts: the registry
    and its insecure hosts) are. Never raises for a chart's fault: every problem is in
    ``DependencyBuild.problems`` and, when there is any, nothing is fetched or only what helm got
    before failing (the caller discards the checkout). A chart without dependencies and without
    Chart.lock costs nothing. ``ValueError`` for a malformed ``allowed_hosts`` entry (settings
    refuse them at start).
    """
    chart_dir = Path(chart_dir)
    hosts = DependencyHosts.configure(allowed_hosts, trusted_hosts)
    build = DependencyBuild()
    lock = _read_lock(chart_dir, build.problems)
    if not dependencies and lock is None:
        return build
    build.problems += _repository_problems(dependencies, hosts)
    if lock is None:
        if any(d.repository for d in dependencies):
            build.problems.append(
                f"{LOCK_FILE}: not found, but Chart.yaml has dependencies "
                f"({', '.join(d.name for d in dependencies)}); {_ADVICE} so the release pins their versions"
            )
    elif lock:
        build.problems += _lock_problems(dependencies, lock)
        build.lock_digest = lock["digest"]
    plain_http, mixed = _plain_http(dependencies, insecure_hosts)
    build.problems += mixed
    if build.problems:
        return build

    env = helm_environment(Path(helm_home))
    shown = os.fspath(helm_bin)
    try:
        repositories = sorted(
            {d.repository for d in dependencies if urlsplit(d.repository).scheme in ("http", "https")}
        )
        indexes = {}
        for repository in repositories:
            alias = "dep-" + hashlib.sha256(repository.encode()).hexdigest()[:12]
            added = _run(shown, ["repo", "add", alias, repository, "--force-update"], env, timeout)
            if added.returncode != 0:
                build.problems.append(
                    f"chart repository {repository} cannot be read: {_trim(added.stderr, chart_dir)}; check the "
                    "dependency's repository URL"
                )
            indexes[repository.rstrip("/")] = Path(env["HELM_REPOSITORY_CACHE"]) / f"{alias}-index.yaml"
        if not build.problems:
            build.problems += _download_problems(lock or {}, indexes, hosts)
        if build.problems:
            return build
        plain = ["--plain-http"] if plain_http else []
        built = _run(shown, ["dependency", "build", str(chart_dir), "--skip-refresh", *plain], env, timeout)
    except subprocess.TimeoutExpired:
        build.problems.append(f"helm dependency build timed out after {timeout:.0f}s; check the repositories answer")
        return build
    except OSError as error:
        build.problems.append(f"cannot run {shown}: {error.strerror}; install helm (bin/install-helm) or set HELM_BIN")
        return build
    if built.returncode != 0:
        output = _trim(built.stderr or built.stdout, chart_dir)
        if "out of sync" in output:
            build.problems.append(
                f"{LOCK_FILE}: does not match Chart.yaml (its digest is of other dependencies or versions; helm: "
                f"{output.removeprefix('Error: ')}); {_ADVICE}"
            )
        else:
            build.problems.append(f"helm dependency build failed: {output or 'no output'}; fix the dependencies")
        return build
    build.locked = _fetched(chart_dir, lock or {}, build.problems)
    return build


def _fetched(chart_dir: Path, lock: dict[str, Any], problems: list[str]) -> list[LockedDependency]:
    locked = []
    for entry in lock.get("dependencies", []):
        name, version = str(entry["name"]), str(entry["version"])
        archive = chart_dir / CHARTS_DIR / f"{name}-{version}.tgz"
        digest = ""
        if archive.is_file() and not archive.is_symlink():
            digest = sha256_digest(archive.read_bytes())
        elif not (chart_dir / CHARTS_DIR / name / "Chart.yaml").is_file():
            problems.append(f"{CHARTS_DIR}/{name}-{version}.tgz: not there after helm dependency build; {_ADVICE}")
        locked.append(LockedDependency(name, version, str(entry.get("repository") or ""), digest))
    return locked
