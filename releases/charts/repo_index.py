"""Render a Helm chart repository ``index.yaml`` (what ``helm repo add`` downloads).

Output shape (as ``helm repo index`` writes it)::

    apiVersion: v1
    entries:
      threek8s:            # chart names sorted
      - apiVersion: v2     # versions sorted by semver, newest first
        appVersion: "1.0.0"
        created: "2024-05-01T10:00:00Z"
        dependencies: [...]
        deprecated: true   # and the other Chart.yaml metadata: annotations, home, icon, keywords,
        description: "..." # kubeVersion, maintainers, sources, type (keys sorted, as helm writes them)
        digest: "<sha256 hex of the .tgz>"
        name: "threek8s"
        urls:
        - "threek8s-1.0.0.tgz"
        version: "1.0.0"
    generated: "2024-05-01T10:00:00Z"

The YAML is written directly (no PyYAML emitter): strings are double-quoted with JSON escapes,
which YAML accepts, plus ``\\uXXXX`` for characters YAML would not take raw. One pass over the
entries: linear in their number, apart from the per-chart version sort.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..versions import InvalidVersion, parse_version, version_sort_key

CHART_API_VERSION = "v2"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# Characters json.dumps(ensure_ascii=False) leaves raw but YAML wants escaped: DEL, C1 controls,
# line/paragraph separators, BOM, lone surrogates and the non-characters U+FFFE/U+FFFF.
# Printable ASCII except '"' and '\\': safe inside double quotes as is.
_PLAIN_ASCII = re.compile(r"[ !#-\[\]-~]*\Z")
_encode_json_string = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C speed-up
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class IndexEntry:
    """One chart version in the index. ``digest`` is the sha256 hex of the .tgz (``sha256:`` is stripped)."""

    name: str
    version: str
    app_version: str
    description: str
    digest: str
    created: datetime
    urls: list[str]
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    api_version: str = CHART_API_VERSION
    #: Chart.yaml metadata ``helm repo index`` copies too; only :data:`METADATA_KEYS` are written.
    metadata: Mapping[str, Any] = field(default_factory=dict)


#: The Chart.yaml fields an entry carries besides the ones above, as ``helm repo index`` writes them.
METADATA_KEYS = frozenset(
    {"annotations", "deprecated", "home", "icon", "keywords", "kubeVersion", "maintainers", "sources", "type"}
)


@functools.lru_cache(maxsize=8192)
def _quote(text: str) -> str:
    """``text`` as a YAML double-quoted scalar (cached: names and descriptions repeat a lot)."""
    if _PLAIN_ASCII.match(text):
        return f'"{text}"'
    quoted = _encode_json_string(text)
    if _YAML_UNSAFE.search(quoted):
        quoted = _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)
    return quoted


def _timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, datetime):
        return _quote(_timestamp(value))
    return _quote(str(value))


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)  # dict first: the ABC check is slow


def _inline(value: Any) -> str:
    """A scalar, or an empty mapping/list, on one line."""
    if _is_mapping(value):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def _emit(value: Any, indent: str, out: list[str]) -> None:
    """Append the block-style YAML of a mapping or list value (one line per scalar)."""
    if _is_mapping(value):
        for key in sorted(value, key=str):
            item = value[key]
            if (_is_mapping(item) or isinstance(item, list)) and item:
                out.append(f"{indent}{_quote(str(key))}:\n")
                _emit(item, indent + "  ", out)
            else:
                shown = _inline(item)
                out.append(f"{indent}{_quote(str(key))}: {shown}\n")
    else:
        for item in value:
            if _is_mapping(item) and item:
                lines: list[str] = []
                _emit(item, indent + "  ", lines)
                lines[0] = f"{indent}- " + lines[0][len(indent) + 2 :]
                out.extend(lines)
            elif isinstance(item, list) and item:
                out.append(f"{indent}-\n")
                _emit(item, indent + "  ", out)
            else:
                shown = _inline(item)
                out.append(f"{indent}- {shown}\n")


VersionKey = tuple[str, str]


def _version_key(entry: IndexEntry) -> VersionKey:
    """Semver precedence (the registry's one sort key), then build metadata, so the order is total."""
    try:
        parsed = parse_version(entry.version)
    except InvalidVersion:
        raise ValueError(f"index entry {entry.name}: version {entry.version!r} is not semver") from None
    return version_sort_key(parsed), parsed.build or ""


def _entry_lines(entry: IndexEntry, out: list[str]) -> None:
    digest = entry.digest.removeprefix("sha256:")
    if not _HEX64.match(digest):
        raise ValueError(f"index entry {entry.name}-{entry.version}: digest must be the sha256 hex of the .tgz")
    if not entry.metadata:  # the common case, written without sorting
        _core_lines(entry, digest, out)
        return
    fields: dict[str, Any] = {
        "apiVersion": entry.api_version,
        "appVersion": entry.app_version,
        "created": _timestamp(entry.created),
        "digest": digest,
        "name": entry.name,
        "urls": entry.urls,
        "version": entry.version,
    }
    if entry.dependencies:
        fields["dependencies"] = entry.dependencies
    if entry.description:
        fields["description"] = entry.description
    for key, value in entry.metadata.items():
        if key in METADATA_KEYS and value not in (None, "", False) and value != [] and value != {}:
            fields[key] = value
    prefix = "  - "
    for key in sorted(fields):
        value = fields[key]
        if isinstance(value, list) and value:
            out.append(f"{prefix}{key}:\n")
            _emit(value, "    ", out)
        elif _is_mapping(value) and value:
            out.append(f"{prefix}{key}:\n")
            _emit(value, "      ", out)
        else:
            out.append(f"{prefix}{key}: {_inline(value)}\n")
        prefix = "    "


def _core_lines(entry: IndexEntry, digest: str, out: list[str]) -> None:
    out.append(
        f"  - apiVersion: {_quote(entry.api_version)}\n"
        f"    appVersion: {_quote(entry.app_version)}\n"
        f"    created: {_quote(_timestamp(entry.created))}\n"
    )
    if entry.dependencies:
        out.append("    dependencies:\n")
        _emit(entry.dependencies, "    ", out)
    if entry.description:
        out.append(f"    description: {_quote(entry.description)}\n")
    out.append(f"    digest: {_quote(digest)}\n    name: {_quote(entry.name)}\n")
    if entry.urls:
        out.append("    urls:\n" + "".join([f"    - {_quote(url)}\n" for url in entry.urls]))
    else:
        out.append("    urls: []\n")
    out.append(f"    version: {_quote(entry.version)}\n")


def render_index(entries: Iterable[IndexEntry], generated: datetime) -> bytes:
    """The ``index.yaml`` bytes for ``entries`` (UTF-8). Same input -> same bytes.

    Charts are listed by name; each chart's versions newest first (semver precedence; build
    metadata then breaks ties, so the order is total). Raises ``ValueError`` for a version that
    is not semver or a digest that is not a sha256 hex.
    """
    by_name: dict[str, list[tuple[VersionKey, IndexEntry]]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append((_version_key(entry), entry))
    out: list[str] = ["apiVersion: v1\n"]
    if not by_name:
        out.append("entries: {}\n")
    else:
        out.append("entries:\n")
    for name in sorted(by_name):
        versions = by_name[name]
        versions.sort(key=lambda item: item[0], reverse=True)
        out.append(f"  {_quote(name)}:\n")
        for _key, entry in versions:
            _entry_lines(entry, out)
    out.append(f"generated: {_quote(_timestamp(generated))}\n")
    return "".join(out).encode("utf-8")
