"""Image references read by docker's grammar (docker-image-py, a port of distribution/reference)."""

from __future__ import annotations

import pytest

from releases.trust import references
from releases.trust.references import ReferenceInvalid, parse_reference

D = "sha256:" + "ab" * 32

CASES = [
    # written, repository, tag, digest
    ("busybox", "docker.io/library/busybox", "", ""),
    ("busybox:1.36", "docker.io/library/busybox", "1.36", ""),
    ("library/busybox:1.36", "docker.io/library/busybox", "1.36", ""),
    ("bitnami/redis:7.2", "docker.io/bitnami/redis", "7.2", ""),
    ("docker.io/busybox", "docker.io/library/busybox", "", ""),
    ("index.docker.io/library/busybox:1", "docker.io/library/busybox", "1", ""),
    ("ghcr.io/stianfro/threek8s/threek8s-backend:1.0.0", "ghcr.io/stianfro/threek8s/threek8s-backend", "1.0.0", ""),
    (f"ghcr.io/org/app@{D}", "ghcr.io/org/app", "", D),
    (f"ghcr.io/org/app:1.0.0@{D}", "ghcr.io/org/app", "1.0.0", D),
    ("127.0.0.1:5000/threek8s/x:1.0.0-rc.1", "127.0.0.1:5000/threek8s/x", "1.0.0-rc.1", ""),
    ("localhost/app", "localhost/app", "", ""),
    ("localhost:5000/a/b/c:latest", "localhost:5000/a/b/c", "latest", ""),
    ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause", "3.9", ""),
    ("  busybox  ", "docker.io/library/busybox", "", ""),
]


@pytest.mark.parametrize(("written", "repository", "tag", "digest"), CASES)
def test_references_parse_as_a_container_runtime_reads_them(written, repository, tag, digest):
    reference = parse_reference(written)
    assert (reference.repository, reference.tag, reference.digest) == (repository, tag, digest)
    assert reference.written == written


def test_a_reference_without_tag_or_digest_means_latest():
    assert parse_reference("busybox").effective_tag == "latest"
    assert parse_reference(f"busybox@{D}").effective_tag == ""
    assert parse_reference("busybox:1").effective_tag == "1"


def test_registry_and_name_split_at_the_last_slash():
    reference = parse_reference("ghcr.io/stianfro/threek8s/threek8s-backend:1.0.0")
    assert (reference.registry, reference.name) == ("ghcr.io/stianfro/threek8s", "threek8s-backend")
    assert reference.under("ghcr.io/stianfro/threek8s")
    assert not reference.under("ghcr.io/stianfro/threek")


@pytest.mark.parametrize(
    ("written", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Ghcr.io/Org/App:1", "lowercase"),
        ("ghcr.io/org/App:1", "lowercase"),
        ("app:", "not an image reference"),
        ("app@sha256:12", "not an image reference"),
        ("app:tag with space", "not an image reference"),
        ("https://ghcr.io/org/app", "not an image reference"),
        (42, "not a string"),
        ("a/" * 200 + "b", "longer than 255"),
    ],
)
def test_what_does_not_parse_is_refused_naming_the_problem_and_the_form(written, words):
    with pytest.raises(ReferenceInvalid) as refused:
        parse_reference(written)
    assert words in str(refused.value)


def test_bare_digests_and_oci_scheme_only_when_asked():
    assert parse_reference(D, bare_digest=True).digest == D
    assert parse_reference(D, bare_digest=True).repository == ""
    with pytest.raises(ReferenceInvalid, match="64 lowercase hex"):
        parse_reference("sha256:abc", bare_digest=True)
    chart = parse_reference("oci://ghcr.io/org/chart/app:1.0.0", oci_scheme=True)
    assert (chart.repository, chart.tag) == ("ghcr.io/org/chart/app", "1.0.0")
    with pytest.raises(ReferenceInvalid):
        parse_reference("oci://ghcr.io/org/chart/app:1.0.0")


def test_the_longest_valid_reference_is_kept_and_longer_text_is_not():
    """Parsed references are kept (an LRU) for repeated reviews; text longer than any valid
    reference is parsed afresh, so a caller cannot fill that cache with large strings."""
    longest = "r.io/" + "a" * 250 + ":" + "t" * 128 + "@sha512:" + "0" * 128
    assert len(longest) <= references.CACHED_REFERENCE_LENGTH
    assert parse_reference(longest).tag == "t" * 128
    references._read_kept.cache_clear()
    parse_reference("busybox:1.36")
    parse_reference("busybox:1.36")
    assert references._read_kept.cache_info().hits == 1
    huge = "ghcr.io/org/app:" + "x" * 100_000
    for _ in range(2):
        with pytest.raises(ReferenceInvalid, match="not an image reference"):
            parse_reference(huge)
    assert references._read_kept.cache_info().currsize == 1
