"""render_index: a Helm repository index.yaml that real helm can add, search and pull from."""

from __future__ import annotations

import functools
import http.server
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import semver
import yaml

from releases.charts import IndexEntry, PackagedChart, package_chart, render_index
from tests.charts.conftest import run_helm
from tests.fixtures.network import serving

GENERATED = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def entry(packaged: PackagedChart, **overrides: object) -> IndexEntry:
    fields: dict = {
        "name": packaged.name,
        "version": packaged.version,
        "app_version": "1.0.0",
        "description": "The threek8s app",
        "digest": packaged.hex_digest,
        "created": datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "urls": [packaged.filename],
        "dependencies": [],
    }
    fields.update(overrides)
    return IndexEntry(**fields)


def fake_entry(version: str, name: str = "threek8s", **overrides: object) -> IndexEntry:
    fields: dict = {
        "name": name,
        "version": version,
        "app_version": version,
        "description": "d",
        "digest": "ab" * 32,
        "created": GENERATED,
        "urls": [f"{name}-{version}.tgz"],
    }
    fields.update(overrides)
    return IndexEntry(**fields)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def chart_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``(url, directory)``: a loopback HTTP server on a free port serving ``directory``."""
    root = tmp_path / "repo"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    with serving(server) as host:
        yield f"http://{host}", root


def with_version(chart_dir: Path, version: str, app_version: str) -> PackagedChart:
    chart_yaml = chart_dir / "Chart.yaml"
    text = chart_yaml.read_text()
    text = "\n".join(
        f"version: {version}"
        if line.startswith("version:")
        else f'appVersion: "{app_version}"'
        if line.startswith("appVersion:")
        else line
        for line in text.splitlines()
    )
    chart_yaml.write_text(text + "\n")
    return package_chart(chart_dir)


def test_helm_repo_add_search_pull(
    helm_bin: str, helm_home: dict[str, str], example_chart: Path, chart_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = chart_server
    packages = [
        with_version(example_chart, v, a) for v, a in (("1.0.0", "1.0.0"), ("1.1.0", "1.1.0"), ("1.0.1", "1.0.0"))
    ]
    for packaged in packages:
        (root / packaged.filename).write_bytes(packaged.data)
    description = 'The "threek8s" app: frontend + backend — ünïcödé and a # hash'  # helm blanks control chars itself
    entries = [
        entry(
            p,
            app_version="1.1.0" if p.version == "1.1.0" else "1.0.0",
            description=description,
            dependencies=[{"name": "redis", "version": "19.x", "repository": "oci://registry.example/charts"}],
        )
        for p in packages
    ]
    (root / "index.yaml").write_bytes(render_index(entries, GENERATED))

    run_helm(helm_bin, helm_home, "repo", "add", "threek8s-test", url)
    found = json.loads(
        run_helm(helm_bin, helm_home, "search", "repo", "threek8s", "--versions", "--output", "json").stdout
    )
    assert [(chart["name"], chart["version"], chart["app_version"]) for chart in found] == [
        ("threek8s-test/threek8s", "1.1.0", "1.1.0"),
        ("threek8s-test/threek8s", "1.0.1", "1.0.0"),
        ("threek8s-test/threek8s", "1.0.0", "1.0.0"),
    ]
    assert found[0]["description"] == description
    latest = json.loads(run_helm(helm_bin, helm_home, "search", "repo", "threek8s", "--output", "json").stdout)
    assert [chart["version"] for chart in latest] == ["1.1.0"]

    for packaged in packages:
        dest = tmp_path / f"pull-{packaged.version}"
        dest.mkdir()
        run_helm(
            helm_bin,
            helm_home,
            "pull",
            "threek8s-test/threek8s",
            "--version",
            packaged.version,
            "--destination",
            str(dest),
        )
        assert (dest / packaged.filename).read_bytes() == packaged.data


def test_index_structure_and_order() -> None:
    entries = [
        fake_entry("1.0.0"),
        fake_entry("1.10.0"),
        fake_entry("1.2.0"),
        fake_entry("2.0.0-rc.1"),
        fake_entry("2.0.0"),
        fake_entry("0.1.0", name="another", digest="sha256:" + "cd" * 32),
    ]
    document = yaml.safe_load(render_index(entries, GENERATED))
    assert document["apiVersion"] == "v1"
    assert document["generated"] == "2025-03-04T05:06:07Z"
    assert list(document["entries"]) == ["another", "threek8s"]
    assert [e["version"] for e in document["entries"]["threek8s"]] == [
        "2.0.0",
        "2.0.0-rc.1",
        "1.10.0",
        "1.2.0",
        "1.0.0",
    ]
    first = document["entries"]["threek8s"][0]
    assert first == {
        "apiVersion": "v2",
        "appVersion": "2.0.0",
        "created": "2025-03-04T05:06:07Z",
        "description": "d",
        "digest": "ab" * 32,
        "name": "threek8s",
        "urls": ["threek8s-2.0.0.tgz"],
        "version": "2.0.0",
    }
    assert document["entries"]["another"][0]["digest"] == "cd" * 32  # sha256: prefix stripped


def test_same_input_same_bytes_whatever_the_input_order() -> None:
    entries = [fake_entry(f"1.{minor}.0") for minor in range(20)] + [fake_entry("1.0.0+b"), fake_entry("1.0.0+a")]
    first = render_index(entries, GENERATED)
    assert render_index(list(reversed(entries)), GENERATED) == first


def test_strings_round_trip() -> None:
    tricky = [
        "plain",
        "yes",
        "null",
        "1.0",
        "- dash",
        "a: b",
        "#hash",
        "'single' \"double\"",
        "line\nbreak",
        "tab\there",
        "\u2028sep\u0085nel\x7fdel\ufeffbom",
        "emoji 🚀",
        "",
    ]
    entries = [fake_entry(f"1.0.{i}", description=text, app_version=text) for i, text in enumerate(tricky)]
    document = yaml.safe_load(render_index(entries, GENERATED))
    by_version = {e["version"]: e for e in document["entries"]["threek8s"]}
    for i, text in enumerate(tricky):
        assert by_version[f"1.0.{i}"]["appVersion"] == text
        if text:
            assert by_version[f"1.0.{i}"]["description"] == text


def test_dependencies_and_timestamps() -> None:
    dependencies = [
        {"name": "postgresql", "version": "~15.5.0", "repository": "https://charts.example", "condition": "pg.enabled"},
        {"name": "redis", "version": "19.x", "tags": ["cache", "db"], "import-values": [{"child": "a", "parent": "b"}]},
    ]
    tz = timezone(timedelta(hours=2))
    entries = [
        fake_entry("1.0.0", dependencies=dependencies, created=datetime(2025, 1, 1, 12, 0, 0, 500000, tzinfo=tz)),
        fake_entry("1.0.1", created=datetime(2025, 1, 1, 12, 0, 0), urls=[]),  # naive: taken as UTC
    ]
    document = yaml.safe_load(render_index(entries, GENERATED))
    newest, oldest = document["entries"]["threek8s"]
    assert oldest["dependencies"] == dependencies
    assert oldest["created"] == "2025-01-01T10:00:00.5Z"
    assert newest["created"] == "2025-01-01T12:00:00Z"
    assert newest["urls"] == []


def test_empty_index() -> None:
    assert yaml.safe_load(render_index([], GENERATED)) == {
        "apiVersion": "v1",
        "entries": {},
        "generated": "2025-03-04T05:06:07Z",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"version": "v1"}, "not semver"), ({"digest": "sha256:xyz"}, "sha256 hex")],
)
def test_refuses_bad_entries(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_index([fake_entry(**{"version": "1.0.0", **overrides})], GENERATED)


def test_index_lists_versions_by_semver_precedence_newest_first() -> None:
    versions = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-alpha-1",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0-0",
        "2.0.0-1a",
        "2.0.0",
        "10.0.0",
    ]
    shuffled = versions[:]
    random.Random(3).shuffle(shuffled)
    document = yaml.safe_load(render_index([fake_entry(v) for v in shuffled], GENERATED))
    assert [e["version"] for e in document["entries"]["threek8s"]] == versions[::-1]
    assert sorted(shuffled, key=functools.cmp_to_key(lambda a, b: semver.Version.parse(a).compare(b))) == versions
    for bad in ("1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0+", "1.0.0-01"):
        with pytest.raises(ValueError, match="not semver"):
            render_index([fake_entry(bad)], GENERATED)


def test_chart_metadata_is_written_in_helms_key_order_and_parses_back() -> None:
    metadata = {
        "deprecated": True,
        "keywords": ["kubernetes", "demo"],
        "maintainers": [{"name": "Stian", "email": "s@example.com"}],
        "annotations": {"artifacthub.io/license": "MIT", "note": "a: b # not a comment"},
        "kubeVersion": ">=1.25.0-0",
        "home": "https://threek8s.example.com",
        "not-a-chart-field": "ignored",
    }
    text = render_index([fake_entry("1.0.0", metadata=metadata)], GENERATED).decode()

    (parsed,) = yaml.safe_load(text)["entries"]["threek8s"]
    assert {key: parsed[key] for key in metadata if key != "not-a-chart-field"} == {
        key: value for key, value in metadata.items() if key != "not-a-chart-field"
    }
    assert "not-a-chart-field" not in parsed
    keys = [
        line.strip(" -").split(":")[0]
        for line in text.splitlines()
        if line.startswith(("  - ", "    ")) and not line.startswith(("     ", "    -"))
    ]
    assert keys == sorted(keys)


def test_entries_without_metadata_are_unchanged() -> None:
    assert render_index([fake_entry("1.0.0")], GENERATED) == render_index([fake_entry("1.0.0", metadata={})], GENERATED)
