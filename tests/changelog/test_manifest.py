"""read_manifest: .release-please-manifest.json."""

from __future__ import annotations

import pytest

from releases.changelog import ManifestError, read_manifest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{".": "1.4.0"}', {".": "1.4.0"}),
        ('{\n  "frontend": "1.2.0",\n  "backend": "1.4.0"\n}\n', {"frontend": "1.2.0", "backend": "1.4.0"}),
        (
            '{"packages/chart": "0.3.0-rc.1", ".": "2.0.0+build.7"}',
            {"packages/chart": "0.3.0-rc.1", ".": "2.0.0+build.7"},
        ),
        ("{}", {}),  # a freshly bootstrapped manifest
        ('\ufeff{".": "1.0.0"}', {".": "1.0.0"}),  # BOM
        (b'{".": "1.0.0"}', {".": "1.0.0"}),
    ],
)
def test_valid_manifests(text: str | bytes, expected: dict[str, str]) -> None:
    assert read_manifest(text) == expected


def test_file_order_is_kept() -> None:
    assert list(read_manifest('{"z": "1.0.0", "a": "2.0.0"}')) == ["z", "a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not valid JSON"),
        ('{".": "1.4.0",}', "not valid JSON"),
        ("{'.': '1.4.0'}", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        ('["1.4.0"]', "must be a JSON object"),
        ('"1.4.0"', "must be a JSON object"),
        ("null", "must be a JSON object"),
        ('{".": 1.4}', "must be a string"),
        ('{".": null}', "must be a string"),
        ('{".": ["1.4.0"]}', "must be a string"),
        ('{".": "v1.4.0"}', "not a semantic version"),
        ('{".": "1.4"}', "not a semantic version"),
        ('{".": "01.4.0"}', "not a semantic version"),
        ('{".": "latest"}', "not a semantic version"),
        ('{".": ""}', "not a semantic version"),
        ('{"backend": "1.4.0", "frontend": "1.2"}', "'frontend'"),
        ('{"": "1.0.0"}', "empty package path"),
        ('{".": "1.0.0", ".": "1.1.0"}', "twice"),
    ],
)
def test_invalid_manifests(text: str | bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        read_manifest(text)
    assert isinstance(raised.value, ManifestError)
