"""The hosts chart dependencies may come from: real helm, real sockets and the real resolver; a
refused host is never contacted."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from releases.charts import build_dependencies, load_chart
from releases.charts.hosts import DependencyHosts, HostPattern
from tests.charts.conftest import copy_chart, run_helm
from tests.fixtures.helm import write_small_chart

PUBLIC_ONLY = (
    "chart dependencies may only come from public hosts or CHART_DEPENDENCY_HOSTS; take it from a public "
    "repository, or ask the operator to list its host in CHART_DEPENDENCY_HOSTS"
)
NOT_LISTED = (
    "which CHART_DEPENDENCY_HOSTS does not list; take it from a host listed there (ask the operator which), or ask "
    "the operator to add this one"
)


def depend_on(chart: Path, repositories: dict[str, str]) -> None:
    """Chart.yaml takes each ``name: repository``, and Chart.lock (written by hand: helm could not
    reach them to lock them) pins it, so only the hosts are wrong."""
    metadata = yaml.safe_load((chart / "Chart.yaml").read_text())
    metadata["dependencies"] = [{"name": n, "version": "1.0.0", "repository": r} for n, r in repositories.items()]
    (chart / "Chart.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False))
    lock = {"dependencies": metadata["dependencies"], "digest": "sha256:" + "0" * 64, "generated": "2025-01-01"}
    (chart / "Chart.lock").write_text(yaml.safe_dump(lock, sort_keys=False))


def dependencies_of(chart: Path):
    return load_chart(chart, expected_name="threek8s", expected_app_version="1.0.0").dependencies


@pytest.fixture
def chart_repository(served_folder, helm_bin: str, helm_home: dict[str, str], tmp_path: Path):
    """``sub`` 0.1.0 in a plain HTTP chart repository on loopback (``helm repo index``): the folder
    server and the archive's bytes."""
    source = write_small_chart(tmp_path / "sub-source", "sub", "0.1.0", "from-sub")
    run_helm(helm_bin, helm_home, "package", str(source), "--destination", str(served_folder.root))
    run_helm(helm_bin, helm_home, "repo", "index", str(served_folder.root))
    return served_folder, (served_folder.root / "sub-0.1.0.tgz").read_bytes()


def locked_on(chart_repository, helm_bin: str, helm_home: dict[str, str], tmp_path: Path) -> Path:
    """The example chart depending on sub from ``chart_repository``, locked by its author
    (``helm dependency update``; charts/ is not committed)."""
    served, _ = chart_repository
    chart = copy_chart(tmp_path / "threek8s")
    metadata = yaml.safe_load((chart / "Chart.yaml").read_text())
    metadata["dependencies"] = [{"name": "sub", "version": "^0.1.0", "repository": served.url}]
    (chart / "Chart.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False))
    run_helm(helm_bin, helm_home, "dependency", "update", str(chart))
    shutil.rmtree(chart / "charts")
    served.paths.clear()
    return chart


@pytest.mark.services
def test_dependencies_on_the_workers_own_network_are_all_refused_and_none_is_contacted(
    silent_listener, helm_bin, tmp_path
):
    # Given a chart whose dependencies point at the metadata endpoint, a private address, a port of
    # the worker's loopback (by name and as an OCI registry) and a name that does not resolve,
    # while the operator trusts a registry on another loopback port
    chart = copy_chart(tmp_path / "threek8s")
    port = silent_listener.port
    depend_on(
        chart,
        {
            "metadata": "http://169.254.169.254/latest/meta-data/iam",
            "redis": "https://10.0.0.5/charts",
            "admin": f"http://localhost:{port}/charts",
            "cache": f"oci://127.0.0.1:{port}/charts",
            "typo": "https://charts.nothing-here.invalid/stable",
        },
    )
    helm_home = tmp_path / "worker-helm"

    # When the worker builds its dependencies
    built = build_dependencies(
        helm_bin, chart, dependencies_of(chart), helm_home=helm_home, trusted_hosts=["127.0.0.1:5000"]
    )

    # Then each one is refused, all at once, saying why and what to do
    metadata, redis, admin, cache, typo = built.problems
    assert metadata == (
        "Chart.yaml: dependency metadata: repository http://169.254.169.254/latest/meta-data/iam is on a "
        f"link-local address (169.254.169.254); {PUBLIC_ONLY}"
    )
    assert redis == (
        f"Chart.yaml: dependency redis: repository https://10.0.0.5/charts is on a private address (10.0.0.5); "
        f"{PUBLIC_ONLY}"
    )
    assert admin.startswith(
        f"Chart.yaml: dependency admin: repository http://localhost:{port}/charts is on localhost, which resolves "
        "to a loopback address (127.0.0.1"
    )
    assert admin.endswith(PUBLIC_ONLY)
    assert cache == (
        f"Chart.yaml: dependency cache: repository oci://127.0.0.1:{port}/charts is on a loopback address "
        f"(127.0.0.1); {PUBLIC_ONLY}"
    )
    assert typo == (
        "Chart.yaml: dependency typo: repository https://charts.nothing-here.invalid/stable is on "
        "charts.nothing-here.invalid, which does not resolve; correct the host name in the URL"
    )
    # And helm never ran: nothing connected, no repository was added, nothing fetched
    assert not silent_listener.was_contacted()
    assert not (helm_home / "config" / "repositories.yaml").exists()
    assert not (chart / "charts").exists()


@pytest.mark.services
def test_an_allowlisted_loopback_chart_repository_is_fetched_end_to_end(
    chart_repository, helm_bin, helm_home, tmp_path
):
    # Given a chart depending on sub from a chart repository on loopback, locked by its author
    served, archive = chart_repository
    chart = locked_on(chart_repository, helm_bin, helm_home, tmp_path)

    # When the worker builds its dependencies without an allowlist, the loopback host is refused
    # and not asked for anything
    refused = build_dependencies(helm_bin, chart, dependencies_of(chart), helm_home=tmp_path / "refused-helm")
    assert len(refused.problems) == 1 and "which resolves to" not in refused.problems[0], refused.problems
    assert f"repository {served.url} is on a loopback address (127.0.0.1)" in refused.problems[0]
    assert served.paths == []

    # When the operator lists that host (and port), helm fetches the index and the pinned archive
    built = build_dependencies(
        helm_bin, chart, dependencies_of(chart), helm_home=tmp_path / "worker-helm", allowed_hosts=[served.host]
    )

    # Then sub is in charts/, recorded with the digest of the bytes the repository served
    assert built.problems == []
    (sub,) = built.locked
    assert (sub.name, sub.version, sub.archive_digest) == (
        "sub",
        "0.1.0",
        "sha256:" + hashlib.sha256(archive).hexdigest(),
    )
    assert (chart / "charts" / "sub-0.1.0.tgz").read_bytes() == archive
    assert served.paths == ["/index.yaml", "/sub-0.1.0.tgz"]


@pytest.mark.services
def test_an_index_sending_the_download_to_a_refused_host_is_refused_before_helm_fetches(
    chart_repository, silent_listener, helm_bin, helm_home, tmp_path
):
    # Given an allowed chart repository whose index.yaml, once the chart is locked, moves the
    # archive to a port of the worker's loopback
    served, _ = chart_repository
    chart = locked_on(chart_repository, helm_bin, helm_home, tmp_path)
    index = (served.root / "index.yaml").read_text()
    moved = f"http://localhost:{silent_listener.port}/sub-0.1.0.tgz"
    (served.root / "index.yaml").write_text(index.replace("- sub-0.1.0.tgz", f"- {moved}"))

    # When the worker builds its dependencies
    built = build_dependencies(
        helm_bin, chart, dependencies_of(chart), helm_home=tmp_path / "worker-helm", allowed_hosts=[served.host]
    )

    # Then the download is refused naming the URL; only the index was read, the other port untouched
    assert built.problems == [
        f"Chart.lock: dependency sub 0.1.0: chart repository {served.url} has it downloaded from {moved}, and that "
        f"URL is on localhost:{silent_listener.port}, {NOT_LISTED}"
    ]
    assert served.paths == ["/index.yaml"]
    assert not silent_listener.was_contacted()
    assert not (chart / "charts").exists()


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("oci://eu.charts.test/library", True),
        ("https://a.b.charts.test/stable", True),
        ("oci://EU.Charts.Test./library", True),
        ("oci://charts.test/library", False),  # the suffix itself is not under it
        ("oci://evilcharts.test/library", False),
        ("oci://eu.charts.test.evil.example/library", False),
        ("oci://registry.internal:5000/charts", True),
        ("oci://registry.internal/charts", False),  # 443, not the listed port
        ("http://registry.internal:5001/charts", False),
        ("http://[fd00::1]:8080/charts", True),  # no port listed: any port
        ("https://93.184.215.14/charts", False),  # public, but not listed: the allowlist is all there is
    ],
)
def test_the_allowlist_allows_its_hosts_and_names_under_its_wildcards_only(url, allowed):
    hosts = DependencyHosts.configure(allowed=["*.charts.test", "registry.internal:5000", "[fd00::1]"])
    refusal = hosts.refusal(url)
    assert (refusal is None) == allowed, refusal
    if not allowed:
        assert refusal.endswith(NOT_LISTED)


@pytest.mark.parametrize(
    ("url", "refused_as"),
    [
        ("https://93.184.215.14/charts", None),  # a public address
        ("oci://127.0.0.1:5000/charts", None),  # the registry, trusted as configured
        ("oci://127.0.0.1:5001/charts", "loopback address (127.0.0.1)"),  # another port of it is not
        ("oci://registry.internal/charts", None),  # an insecure registry host: not even resolved
        ("http://[::ffff:10.1.2.3]/charts", "private address (::ffff:a01:203)"),
        ("http://2130706433/charts", "2130706433, which resolves to a loopback address (127.0.0.1)"),
        ("http://0.0.0.0:8080/charts", "unspecified address (0.0.0.0)"),
        ("http://100.64.0.1/charts", "non-public address (100.64.0.1)"),
        ("http://[ff02::1]/charts", "multicast address (ff02::1)"),
    ],
)
def test_without_an_allowlist_only_public_and_trusted_hosts_are_allowed(url, refused_as):
    hosts = DependencyHosts.configure(trusted=["127.0.0.1:5000", "registry.internal"])
    refusal = hosts.refusal(url)
    if refused_as is None:
        assert refusal is None
    else:
        assert refused_as in refusal and refusal.endswith(PUBLIC_ONLY), refusal


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("https://charts.example.com", "it may hold no scheme, user or path"),
        ("charts.example.com/stable", "it may hold no scheme, user or path"),
        ("charts.example.com:http", "the port must be a number from 1 to 65535"),
        ("charts.example.com:70000", "the port must be a number from 1 to 65535"),
        ("fd00::1", "write an IPv6 address in brackets"),
        ("*.10.0.0.0", "a wildcard takes a domain name, not an address"),
        ("charts.*.example.com", "use a host name, host:port or *.suffix"),
        ("*example.com", "use a host name, host:port or *.suffix"),
    ],
)
def test_a_malformed_allowlist_entry_is_refused_saying_why(entry, words):
    with pytest.raises(ValueError, match=r"is not a host") as refused:
        HostPattern.parse(entry)
    assert words in str(refused.value)
    assert f"{entry!r}" in str(refused.value)
