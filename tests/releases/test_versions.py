"""releases.versions: one parser, one precedence, one collation-independent sort key."""

from __future__ import annotations

import functools
import random

import pytest
import semver

from releases.models import DockerImage, HelmChart, ReleaseVersion
from releases.versions import (
    LATEST_SORT_KEY,
    MAX_VERSION_LENGTH,
    SORT_KEY_MAX_LENGTH,
    BuildMetadataRefused,
    InvalidVersion,
    VersionTooLong,
    column_sort_key,
    compare_versions,
    is_prerelease,
    is_semver,
    parse_publishable_version,
    parse_version,
    version_sort_key,
)
from tests.fixtures.factories import make_chart, make_image, make_release

# semver 2.0.0 section 11's precedence examples, plus hyphens in identifiers and numbers by value.
PRECEDENCE = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-alpha-1",  # "alpha" < "alpha-1" by ASCII: a shorter identifier that is a prefix sorts first
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.9.0",
    "1.10.0",
    "2.0.0-0",
    "2.0.0-1a",
    "2.0.0-A",  # ASCII: uppercase before lowercase
    "2.0.0-a",
    "2.0.0",
    "10.0.0",
]
LONGEST = "0.0.0-" + ".".join(["0"] * 60) + ".10"  # 128 characters, the most numeric identifiers


def shuffled(values: list[str]) -> list[str]:
    copy = values[:]
    random.Random(11).shuffle(copy)
    return copy


def test_precedence_table_is_semver_order_in_python() -> None:
    assert sorted(shuffled(PRECEDENCE), key=functools.cmp_to_key(compare_versions)) == PRECEDENCE
    assert sorted(shuffled(PRECEDENCE), key=version_sort_key) == PRECEDENCE
    assert sorted(shuffled(PRECEDENCE), key=functools.cmp_to_key(lambda a, b: semver.Version.parse(a).compare(b))) == (
        PRECEDENCE
    )


@pytest.mark.parametrize(("lower", "higher"), list(zip(PRECEDENCE, PRECEDENCE[1:], strict=False)))
def test_each_neighbour_pair_compares_lower_then_higher(lower: str, higher: str) -> None:
    assert compare_versions(lower, higher) == -1
    assert compare_versions(higher, lower) == 1
    assert version_sort_key(lower) < version_sort_key(higher)


def test_sort_key_uses_only_lowercase_hex_and_ignores_build_metadata() -> None:
    for version in PRECEDENCE:
        assert set(version_sort_key(version)) <= set("0123456789abcdef")
    assert version_sort_key("1.0.0+build.1") == version_sort_key("1.0.0")
    assert compare_versions("1.0.0+build.1", "1.0.0") == 0


def test_longest_version_key_fits_the_columns() -> None:
    assert len(LONGEST) == MAX_VERSION_LENGTH
    assert len(version_sort_key(LONGEST)) == SORT_KEY_MAX_LENGTH
    for model, field in ((ReleaseVersion, "version_order"), (HelmChart, "version_order"), (DockerImage, "tag_order")):
        assert model._meta.get_field(field).max_length >= SORT_KEY_MAX_LENGTH


def test_column_key_puts_latest_last_and_non_versions_first() -> None:
    keys = [column_sort_key(v) for v in PRECEDENCE]
    assert all("" < key < LATEST_SORT_KEY for key in keys)
    assert column_sort_key("latest") == LATEST_SORT_KEY
    assert column_sort_key("not-a-version") == ""
    assert column_sort_key("1.0.0-" + "a" * 200) == ""


@pytest.mark.parametrize(
    ("text", "allow_v_prefix", "valid"),
    [
        ("1.4.0", False, True),
        ("1.5.0-rc.1", False, True),
        ("1.0.0+build.1", False, True),
        ("v1.4.0", False, False),
        ("v1.4.0", True, True),
        ("V1.4.0", True, True),
        ("1.4", False, False),
        ("01.4.0", False, False),
        ("1.0.0-01", False, False),
        ("1.0.0-", False, False),
        ("1.0.0+", False, False),
        (" 1.4.0", False, False),
        ("1.4.0\n", False, False),
        ("\u0661.0.0", False, False),  # Arabic-Indic digit one
        ("", False, False),
    ],
)
def test_parsing_is_strict_semver(text: str, allow_v_prefix: bool, valid: bool) -> None:
    assert is_semver(text, allow_v_prefix=allow_v_prefix) is valid
    if not valid:
        with pytest.raises(InvalidVersion, match="not a semantic version"):
            parse_version(text, allow_v_prefix=allow_v_prefix)


def test_a_version_longer_than_an_oci_tag_is_refused_with_the_limit() -> None:
    with pytest.raises(VersionTooLong, match="at most 128 characters"):
        parse_version("1.0.0-" + "a" * 123)
    assert parse_version("1.0.0-" + "a" * 122)


def test_build_metadata_is_refused_for_publishing_with_what_to_do() -> None:
    with pytest.raises(BuildMetadataRefused, match=r"use a pre-release such as 1\.0\.0-build\.1"):
        parse_publishable_version("1.0.0+build.1")
    assert parse_publishable_version("1.0.0-build.1").prerelease == "build.1"


def test_is_prerelease() -> None:
    assert is_prerelease("1.0.0-rc.1")
    assert not is_prerelease("1.0.0")
    assert not is_prerelease(parse_version("1.0.0+build.1"))


@pytest.mark.django_db
def test_precedence_table_is_the_database_order() -> None:
    # Given every version of the table, stored in random order
    for version in shuffled(PRECEDENCE):
        make_release(version)
        make_image(tag=version)
        make_chart(version)
    make_image(tag="latest")

    # Then ORDER BY the keys is semver order, with latest after everything
    assert list(ReleaseVersion.objects.order_by("version_order").values_list("version", flat=True)) == PRECEDENCE
    assert list(HelmChart.objects.order_by("version_order").values_list("chart_version", flat=True)) == PRECEDENCE
    assert list(DockerImage.objects.order_by("tag_order").values_list("tag", flat=True)) == [*PRECEDENCE, "latest"]


@pytest.mark.django_db
def test_longest_version_is_stored() -> None:
    release = make_release(LONGEST)
    assert ReleaseVersion.objects.get(pk=release.pk).version_order == version_sort_key(LONGEST)
