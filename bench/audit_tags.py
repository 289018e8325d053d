"""Benchmark of releases.audit.audit_tags against a real docker-registry.

Run: ``.venv/bin/python -m bench.audit_tags [--quick]`` (about 2.5 minutes). It starts its own registry
(storage on /dev/shm when there is room), pushes 10,000 tags (100 repositories x 100 tags: 90
two-platform image indexes and 10 Helm charts, each repository's tags PUT by tag onto one
manifest), stores the expected tags in a SQLite file and measures, in one run:

(a) the audit's tags/second over the 10,000 tags (read from SQLite in batches of 500 through a
    generator), concurrency 16, engine ``fast`` (the default), median of ``--rounds``;
(b) ``wrk -t2 -c16`` GETs of the same manifests from the same registry (a Lua script cycling
    through the 10,000 tag URLs with the audit's Accept header), requests/second, median of
    ``--rounds``, alternating with (a); goal: audit >= 0.8x wrk;
(c) a ``skopeo inspect --raw --tls-verify=false docker://...`` loop over 50 tags, tags/second;
    goal: audit >= 10x skopeo;
(d) peak RSS (VmHWM) growth of the audit in a fresh process over 1,000 vs 10,000 tags; goal:
    flat (10,000 tags may not grow more than 8 MiB beyond what 1,000 did).
Also, for the record, the ``httpx`` engine (threads through RegistryClient) over 3,000 tags.
Quick mode: 100 tags (10 x 10), one round, 1-second wrk runs, 5 skopeo calls.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._tools import in_fresh_process, require, scratch_directory  # noqa: E402
from bench.figures import EDGE_ROUNDS, Figure, Goal, main, ratio_figure  # noqa: E402
from releases.audit import ExpectedTag, audit_tags  # noqa: E402
from releases.oci import (  # noqa: E402
    Descriptor,
    PlatformManifest,
    RegistryClient,
    build_index,
    build_manifest,
    canonical_json,
    sha256_digest,
)
from releases.oci.media_types import (  # noqa: E402
    DEFAULT_MANIFEST_ACCEPT,
    HELM_CHART_CONTENT,
    HELM_CONFIG,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_TAR_GZIP,
    OCI_MANIFEST,
)
from releases.sandbox.registry import start_registry  # noqa: E402

CHART_EVERY = 10  # every 10th repository holds a Helm chart, the others images
PLATFORMS = frozenset({"linux/amd64", "linux/arm64"})
BATCH = 500
CONCURRENCY = 16


# -- populating the registry ----------------------------------------------------------------------


@dataclass(frozen=True)
class Tags:
    """How many tags the registry holds: ``repositories`` x ``per_repository``."""

    repositories: int
    per_repository: int

    @property
    def total(self) -> int:
        return self.repositories * self.per_repository


FULL_TAGS = Tags(100, 100)
QUICK_TAGS = Tags(10, 10)


def push_repository(client: RegistryClient, number: int, tags: int) -> list[tuple[str, str, str, str]]:
    """One manifest (image index or chart), tagged ``tags`` times; rows (repository, tag, digest, kind)."""
    repository = f"bench/app{number:03d}"
    content = f"content of {repository}".encode() * 20
    if number % CHART_EVERY == 0:
        kind = "chart"
        config = canonical_json({"apiVersion": "v2", "name": f"app{number:03d}", "version": "1.0.0"})
        layer = Descriptor(HELM_CHART_CONTENT, sha256_digest(content), len(content))
        config_descriptor = Descriptor(HELM_CONFIG, sha256_digest(config), len(config))
        client.push_blob(repository, layer.digest, layer.size, content)
        client.push_blob(repository, config_descriptor.digest, config_descriptor.size, config)
        body, media_type = build_manifest(config_descriptor, [layer]), OCI_MANIFEST
    else:
        kind = "image"
        layer = Descriptor(OCI_LAYER_TAR_GZIP, sha256_digest(content), len(content))
        client.push_blob(repository, layer.digest, layer.size, content)
        entries = []
        for architecture, variant in (("amd64", None), ("arm64", "v8")):
            config = canonical_json({"architecture": architecture, "os": "linux", "repository": repository})
            config_descriptor = Descriptor(OCI_CONFIG, sha256_digest(config), len(config))
            client.push_blob(repository, config_descriptor.digest, config_descriptor.size, config)
            manifest = build_manifest(config_descriptor, [layer])
            digest = client.put_manifest(repository, sha256_digest(manifest), manifest, OCI_MANIFEST)
            entries.append(PlatformManifest(digest, len(manifest), "linux", architecture, variant))
        body, media_type = build_index(entries), OCI_INDEX
    rows = []
    for tag_number in range(tags):
        tag = f"1.{tag_number}.0"
        rows.append((repository, tag, client.put_manifest(repository, tag, body, media_type), kind))
    return rows


def populate(host: str, database: Path, tags: Tags) -> int:
    start = time.perf_counter()
    with RegistryClient(host) as client, ThreadPoolExecutor(8) as pool:
        repositories = list(
            pool.map(lambda number: push_repository(client, number, tags.per_repository), range(tags.repositories))
        )
    connection = sqlite3.connect(database)
    with connection:
        connection.execute(
            "CREATE TABLE expected (id INTEGER PRIMARY KEY, repository TEXT, tag TEXT, digest TEXT, kind TEXT)"
        )
        # Interleave repositories, as a table ordered by publication date would.
        rows = [rows[n] for n in range(tags.per_repository) for rows in repositories]
        connection.executemany("INSERT INTO expected (repository, tag, digest, kind) VALUES (?, ?, ?, ?)", rows)
    connection.close()
    print(f"pushed {len(rows):,} tags in {tags.repositories} repositories in {time.perf_counter() - start:.1f} s")
    return len(rows)


def expected_tags(database: Path, limit: int) -> Iterator[ExpectedTag]:
    """The expected tags, read in batches of 500 (as a Django ``.iterator(chunk_size=500)`` would)."""
    connection = sqlite3.connect(database)
    try:
        cursor = connection.execute(
            "SELECT id, repository, tag, digest, kind FROM expected ORDER BY id LIMIT ?", (limit,)
        )
        while rows := cursor.fetchmany(BATCH):
            for key, repository, tag, digest, kind in rows:
                platforms = PLATFORMS if kind == "image" else None
                yield ExpectedTag(str(key), repository, tag, digest, kind, platforms)
    finally:
        connection.close()


# -- measurements ---------------------------------------------------------------------------------


@dataclass
class Sample:
    """One measured run: its rate, and the CPU the client and the registry spent per request."""

    rate: float
    client_cpu_us: float
    registry_cpu_us: float


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_audit(
    host: str, registry_pid: int, database: Path, limit: int, engine: str = "fast"
) -> tuple[Sample, Counter[str]]:
    with RegistryClient(host) as client:
        cpu, registry_cpu, start = own_cpu_seconds(), process_cpu_seconds(registry_pid), time.perf_counter()
        statuses = Counter(
            str(result.status)
            for result in audit_tags(client, expected_tags(database, limit), concurrency=CONCURRENCY, engine=engine)  # type: ignore[arg-type]
        )
        elapsed = time.perf_counter() - start
        cpu, registry_cpu = own_cpu_seconds() - cpu, process_cpu_seconds(registry_pid) - registry_cpu
    return Sample(limit / elapsed, cpu / limit * 1e6, registry_cpu / limit * 1e6), statuses


WRK_SCRIPT = """
paths = {%(paths)s}
accept = "%(accept)s"
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["Accept"] = accept})
end
done = function(summary, latency, requests)
  io.write(string.format("non2xx %%d\\n", summary.errors.status))
end
"""


def write_wrk_script(database: Path, path: Path) -> None:
    accept = ", ".join(DEFAULT_MANIFEST_ACCEPT)
    urls = [f"/v2/{tag.repository}/manifests/{tag.tag}" for tag in expected_tags(database, 10**9)]
    path.write_text(WRK_SCRIPT % {"paths": ",\n".join(f'"{url}"' for url in urls), "accept": accept})


def run_wrk(url: str, registry_pid: int, script: Path, seconds: int) -> Sample:
    cpu, registry_cpu = own_cpu_seconds(resource.RUSAGE_CHILDREN), process_cpu_seconds(registry_pid)
    result = subprocess.run(
        ["wrk", "-t2", f"-c{CONCURRENCY}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = own_cpu_seconds(resource.RUSAGE_CHILDREN) - cpu
    registry_cpu = process_cpu_seconds(registry_pid) - registry_cpu
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    requests = re.search(r"(\d+) requests in", result.stdout)
    non2xx = re.search(r"non2xx (\d+)", result.stdout)
    if rate is None or requests is None or non2xx is None or "Socket errors" in result.stdout or int(non2xx.group(1)):
        raise RuntimeError(f"wrk run failed:\n{result.stdout}\n{result.stderr}")
    count = int(requests.group(1))
    return Sample(float(rate.group(1)), cpu / count * 1e6, registry_cpu / count * 1e6)


def run_skopeo(host: str, database: Path, count: int) -> float:
    tags = list(expected_tags(database, count))
    start = time.perf_counter()
    for tag in tags:
        subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{tag.repository}:{tag.tag}"],
            capture_output=True,
            check=True,
        )
    return count / (time.perf_counter() - start)


def vm_hwm_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_child(host: str, database: str, limit: str) -> None:
    """Runs in a fresh process: peak RSS before and after auditing ``limit`` tags."""
    with RegistryClient(host) as client:
        client.check()
        before = vm_hwm_kib()
        start = time.perf_counter()
        statuses = Counter(
            str(result.status)
            for result in audit_tags(client, expected_tags(Path(database), int(limit)), concurrency=CONCURRENCY)
        )
        elapsed = time.perf_counter() - start
        after = vm_hwm_kib()
    print(json.dumps({"before_kib": before, "after_kib": after, "s": elapsed, "statuses": statuses}))


def _default_workdir() -> str | None:
    return scratch_directory(512 * 1024 * 1024)


@dataclass(frozen=True)
class Sizes:
    tags: Tags
    rounds: int
    wrk_seconds: int
    skopeo_tags: int
    httpx_tags: int
    rss_small: int


QUICK = Sizes(QUICK_TAGS, rounds=1, wrk_seconds=1, skopeo_tags=5, httpx_tags=50, rss_small=20)
FULL = Sizes(FULL_TAGS, rounds=EDGE_ROUNDS, wrk_seconds=10, skopeo_tags=50, httpx_tags=3000, rss_small=1000)


def run(quick: bool) -> list[Figure]:
    sizes = QUICK if quick else FULL
    require("docker-registry", "wrk", "skopeo")
    workdir = Path(tempfile.mkdtemp(prefix="audit-bench-", dir=_default_workdir()))
    registry = start_registry(workdir / "registry", {"log": {"level": "warn"}})
    print(f"registry {registry.url} (storage {registry.root}), {os.cpu_count()} CPUs")
    try:
        database = workdir / "expected.sqlite3"
        total = populate(registry.host, database, sizes.tags)
        script = workdir / "tags.lua"
        write_wrk_script(database, script)

        pid = registry.process.pid
        run_audit(registry.host, pid, database, min(1000, total))  # warm-up (registry caches, imports)
        run_wrk(registry.url, pid, script, 1 if quick else 2)
        audits: list[Sample] = []
        wrks: list[Sample] = []
        for round_number in range(sizes.rounds):
            order = ["audit", "wrk"] if round_number % 2 == 0 else ["wrk", "audit"]
            for who in order:
                if who == "audit":
                    sample, statuses = run_audit(registry.host, pid, database, total)
                    if statuses != {"ok": total}:
                        raise RuntimeError(f"audit reported {dict(statuses)}, expected {total} ok")
                    audits.append(sample)
                else:
                    wrks.append(run_wrk(registry.url, pid, script, sizes.wrk_seconds))
            print(
                f"  round {round_number + 1}: audit {audits[-1].rate:5.0f} tags/s "
                f"(client {audits[-1].client_cpu_us:4.0f} us CPU/tag, registry {audits[-1].registry_cpu_us:4.0f})   "
                f"wrk {wrks[-1].rate:5.0f} req/s "
                f"(client {wrks[-1].client_cpu_us:4.0f} us CPU/req, registry {wrks[-1].registry_cpu_us:4.0f})"
            )
        audit_cpu = statistics.median(sample.client_cpu_us for sample in audits)
        wrk_cpu = statistics.median(sample.client_cpu_us for sample in wrks)
        registry_cpu = statistics.median(sample.registry_cpu_us for sample in audits + wrks)

        httpx_sample, httpx_statuses = run_audit(registry.host, pid, database, sizes.httpx_tags, engine="httpx")
        assert httpx_statuses == {"ok": sizes.httpx_tags}, httpx_statuses
        skopeo_rate = run_skopeo(registry.host, database, sizes.skopeo_tags)
        small = in_fresh_process(rss_child, registry.host, str(database), str(sizes.rss_small))
        large = in_fresh_process(rss_child, registry.host, str(database), str(total))
    finally:
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    growth = {name: (f["after_kib"] - f["before_kib"]) / 1024 for name, f in (("small", small), ("large", large))}
    audit_rates, wrk_rates = [a.rate for a in audits], [w.rate for w in wrks]
    return [
        ratio_figure(
            f"{total:,} tags: audit (concurrency {CONCURRENCY}, engine fast) / wrk GET of the same manifests",
            audit_rates,
            wrk_rates,
            "tags/s",
            Goal(">=", 0.8),
            note=f"CPU per request: registry {registry_cpu:.0f} us, audit {audit_cpu:.0f} us, wrk {wrk_cpu:.0f} us",
        ),
        Figure(
            f"audit / a skopeo inspect --raw loop over {sizes.skopeo_tags} tags",
            statistics.median(audit_rates),
            "tags/s",
            skopeo_rate,
            Goal(">=", 10),
        ),
        Figure(
            f"peak RSS growth of the audit in a fresh process: {total:,} tags minus {sizes.rss_small:,} tags",
            growth["large"] - growth["small"],
            "MiB",
            goal=Goal("<", 8, " MiB"),
            note=f"+{growth['small']:.1f} MiB at {sizes.rss_small:,}, +{growth['large']:.1f} MiB at {total:,} (flat)",
        ),
        Figure(
            f"engine httpx (threads) over {sizes.httpx_tags:,} tags",
            httpx_sample.rate,
            "tags/s",
            note=f"{httpx_sample.client_cpu_us:.0f} us client CPU/tag",
        ),
    ]


if __name__ == "__main__":
    main(run)
