"""Benchmark of releases.audit.audit_tags against a real docker-registry.

Run: ``.venv/bin/python bench/audit_tags.py`` (about 2.5 minutes). It starts its own registry
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
Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
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

REPOSITORIES = 100
TAGS_PER_REPOSITORY = 100
CHART_EVERY = 10  # every 10th repository holds a Helm chart, the others images
PLATFORMS = frozenset({"linux/amd64", "linux/arm64"})
BATCH = 500
CONCURRENCY = 16


# -- populating the registry ----------------------------------------------------------------------


def push_repository(client: RegistryClient, number: int) -> list[tuple[str, str, str, str]]:
    """One manifest (image index or chart), tagged 100 times; rows (repository, tag, digest, kind)."""
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
    for tag_number in range(TAGS_PER_REPOSITORY):
        tag = f"1.{tag_number}.0"
        rows.append((repository, tag, client.put_manifest(repository, tag, body, media_type), kind))
    return rows


def populate(host: str, database: Path) -> int:
    start = time.perf_counter()
    with RegistryClient(host) as client, ThreadPoolExecutor(8) as pool:
        repositories = list(pool.map(lambda number: push_repository(client, number), range(REPOSITORIES)))
    connection = sqlite3.connect(database)
    with connection:
        connection.execute(
            "CREATE TABLE expected (id INTEGER PRIMARY KEY, repository TEXT, tag TEXT, digest TEXT, kind TEXT)"
        )
        # Interleave repositories, as a table ordered by publication date would.
        rows = [rows[n] for n in range(TAGS_PER_REPOSITORY) for rows in repositories]
        connection.executemany("INSERT INTO expected (repository, tag, digest, kind) VALUES (?, ?, ?, ?)", rows)
    connection.close()
    print(f"pushed {len(rows):,} tags in {REPOSITORIES} repositories in {time.perf_counter() - start:.1f} s")
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


def rss_child(host: str, database: str, limit: int) -> None:
    """Runs in a fresh process: peak RSS before and after auditing ``limit`` tags."""
    with RegistryClient(host) as client:
        client.check()
        before = vm_hwm_kib()
        start = time.perf_counter()
        statuses = Counter(
            str(result.status)
            for result in audit_tags(client, expected_tags(Path(database), limit), concurrency=CONCURRENCY)
        )
        elapsed = time.perf_counter() - start
        after = vm_hwm_kib()
    print(json.dumps({"before_kib": before, "after_kib": after, "s": elapsed, "statuses": statuses}))


def measure_rss(host: str, database: Path, limit: int) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, __file__, "--rss-child", host, str(database), str(limit)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _ok(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def _default_workdir() -> str | None:
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 512 * 1024 * 1024:
        return str(shm)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--skopeo-tags", type=int, default=50)
    parser.add_argument("--workdir", default=None, help="default: /dev/shm when it has room, else the temp dir")
    parser.add_argument("--rss-child", nargs=3, metavar=("HOST", "DB", "LIMIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        host, database, limit = args.rss_child
        rss_child(host, database, int(limit))
        return 0
    missing = [tool for tool in ("docker-registry", "wrk", "skopeo") if shutil.which(tool) is None]
    if missing:
        print(f"needs {', '.join(missing)} (apt-get install docker-registry wrk skopeo)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="audit-bench-", dir=args.workdir or _default_workdir()))
    registry = start_registry(workdir / "registry", {"log": {"level": "warn"}})
    print(f"registry {registry.url} (storage {registry.root}), {os.cpu_count()} CPUs")
    try:
        database = workdir / "expected.sqlite3"
        total = populate(registry.host, database)
        script = workdir / "tags.lua"
        write_wrk_script(database, script)

        pid = registry.process.pid
        run_audit(registry.host, pid, database, 1000)  # warm-up (registry caches, imports)
        run_wrk(registry.url, pid, script, 2)
        audits: list[Sample] = []
        wrks: list[Sample] = []
        for round_number in range(args.rounds):
            order = ["audit", "wrk"] if round_number % 2 == 0 else ["wrk", "audit"]
            for who in order:
                if who == "audit":
                    sample, statuses = run_audit(registry.host, pid, database, total)
                    if statuses != {"ok": total}:
                        raise RuntimeError(f"audit reported {dict(statuses)}, expected {total} ok")
                    audits.append(sample)
                else:
                    wrks.append(run_wrk(registry.url, pid, script, args.wrk_seconds))
            print(
                f"  round {round_number + 1}: audit {audits[-1].rate:5.0f} tags/s "
                f"(client {audits[-1].client_cpu_us:4.0f} us CPU/tag, registry {audits[-1].registry_cpu_us:4.0f})   "
                f"wrk {wrks[-1].rate:5.0f} req/s "
                f"(client {wrks[-1].client_cpu_us:4.0f} us CPU/req, registry {wrks[-1].registry_cpu_us:4.0f})"
            )
        audit_rate = statistics.median(sample.rate for sample in audits)
        wrk_rate = statistics.median(sample.rate for sample in wrks)
        ratio_wrk = audit_rate / wrk_rate
        ok_a = ratio_wrk >= 0.8
        print(f"(a) audit of {total:,} tags (concurrency {CONCURRENCY}, engine fast): {audit_rate:.0f} tags/s")
        print(f"(b) wrk -t2 -c{CONCURRENCY} GET of the same manifests: {wrk_rate:.0f} req/s")
        print(f"    audit/wrk {ratio_wrk:.2f}x (goal >= 0.8x) {_ok(ok_a)}")
        audit_cpu = statistics.median(sample.client_cpu_us for sample in audits)
        wrk_cpu = statistics.median(sample.client_cpu_us for sample in wrks)
        registry_cpu = statistics.median(sample.registry_cpu_us for sample in audits + wrks)
        print(
            f"    CPU per request (medians): registry {registry_cpu:.0f} us, audit process {audit_cpu:.0f} us, "
            f"wrk {wrk_cpu:.0f} us: all on the same {os.cpu_count()} cores"
        )

        httpx_limit = 3000
        httpx_sample, httpx_statuses = run_audit(registry.host, pid, database, httpx_limit, engine="httpx")
        assert httpx_statuses == {"ok": httpx_limit}, httpx_statuses
        print(
            f"    for the record, engine httpx (threads) over {httpx_limit:,} tags: {httpx_sample.rate:.0f} tags/s, "
            f"{httpx_sample.client_cpu_us:.0f} us client CPU/tag"
        )

        skopeo_rate = run_skopeo(registry.host, database, args.skopeo_tags)
        ratio_skopeo = audit_rate / skopeo_rate
        ok_c = ratio_skopeo >= 10
        print(f"(c) skopeo inspect --raw loop over {args.skopeo_tags} tags: {skopeo_rate:.1f} tags/s")
        print(f"    audit/skopeo {ratio_skopeo:.0f}x (goal >= 10x) {_ok(ok_c)}")

        small, large = measure_rss(registry.host, database, 1000), measure_rss(registry.host, database, total)
        growth = {}
        for name, figures in (("1,000", small), (f"{total:,}", large)):
            before, after = figures["before_kib"] / 1024, figures["after_kib"] / 1024  # type: ignore[operator]
            growth[name] = after - before
            print(
                f"(d) {name:>6} tags in a fresh process: peak RSS {before:.1f} MiB before, {after:.1f} MiB after "
                f"(+{after - before:.1f} MiB), {figures['statuses']}"
            )
        extra = growth[f"{total:,}"] - growth["1,000"]
        ok_d = extra < 8
        print(f"    10x the tags cost {extra:+.1f} MiB more peak RSS (goal < 8 MiB: flat) {_ok(ok_d)}")
    finally:
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok_a and ok_c and ok_d else 1


if __name__ == "__main__":
    sys.exit(main())
