"""Push a packaged chart to an OCI registry the way ``helm push`` lays it out.

Artifact: config blob = JSON of the Chart.yaml metadata (``application/vnd.cncf.helm.config.v1+json``),
one layer = the chart .tgz (``application/vnd.cncf.helm.chart.content.v1.tar+gzip``), an OCI image
manifest with Helm's ``org.opencontainers.image.*`` annotations, tagged with the chart version
(``+`` becomes ``_``, as Helm does, since tags cannot hold ``+``).

Versions are immutable: the tag is checked *before* any blob is pushed, so pushing other content
under a published version raises :class:`~releases.oci.TagConflict` and writes nothing; pushing
the same content again is a no-op (``created=False``). Everything is deterministic (no
timestamp unless the caller passes ``created``), so the same chart always yields the same digest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from releases.charts.package import PackagedChart
from releases.oci import Descriptor, RegistryClient, TagConflict, build_manifest, canonical_json, sha256_digest
from releases.oci.manifest import ManifestRef
from releases.oci.media_types import HELM_CHART_CONTENT, HELM_CONFIG, OCI_MANIFEST

ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_VERSION = "org.opencontainers.image.version"
ANNOTATION_DESCRIPTION = "org.opencontainers.image.description"
ANNOTATION_URL = "org.opencontainers.image.url"
ANNOTATION_SOURCE = "org.opencontainers.image.source"
ANNOTATION_AUTHORS = "org.opencontainers.image.authors"
ANNOTATION_CREATED = "org.opencontainers.image.created"


@dataclass(frozen=True)
class PushedChart:
    """Result of :func:`push_chart`.

    ``digest``: the manifest digest the tag serves; ``size``: the chart archive's size in bytes;
    ``created``: False when the tag already held exactly this manifest (nothing was written).
    """

    digest: str
    size: int
    tag: str = ""
    manifest_size: int = 0
    created: bool = True


def oci_tag(version: str) -> str:
    """Helm's tag for a chart version: ``1.0.0+build.1`` -> ``1.0.0_build.1``."""
    return version.replace("+", "_")


def chart_annotations(chart_metadata: Mapping[str, Any], *, created: str | None = None) -> dict[str, str]:
    """The manifest annotations ``helm push`` sets (custom chart annotations first, then the OCI ones)."""
    annotations: dict[str, str] = {}
    custom = chart_metadata.get("annotations")
    if isinstance(custom, Mapping):
        annotations.update({str(key): str(value) for key, value in custom.items()})
    annotations[ANNOTATION_TITLE] = str(chart_metadata.get("name", ""))
    annotations[ANNOTATION_VERSION] = str(chart_metadata.get("version", ""))
    if chart_metadata.get("description"):
        annotations[ANNOTATION_DESCRIPTION] = str(chart_metadata["description"])
    if chart_metadata.get("home"):
        annotations[ANNOTATION_URL] = str(chart_metadata["home"])
    sources = chart_metadata.get("sources")
    if isinstance(sources, list) and sources:
        annotations[ANNOTATION_SOURCE] = str(sources[0])
    maintainers = chart_metadata.get("maintainers")
    if isinstance(maintainers, list) and maintainers:
        authors = []
        for maintainer in maintainers:
            if isinstance(maintainer, Mapping) and maintainer.get("name"):
                email = maintainer.get("email")
                authors.append(f"{maintainer['name']} ({email})" if email else str(maintainer["name"]))
        if authors:
            annotations[ANNOTATION_AUTHORS] = ", ".join(authors)
    if created:
        annotations[ANNOTATION_CREATED] = created
    return annotations


def build_chart_manifest(
    packaged: PackagedChart, chart_metadata: Mapping[str, Any], *, created: str | None = None
) -> tuple[bytes, bytes]:
    """``(config_bytes, manifest_bytes)`` of the chart artifact (deterministic)."""
    config = canonical_json(dict(chart_metadata))
    manifest = build_manifest(
        Descriptor(HELM_CONFIG, sha256_digest(config), len(config)),
        [Descriptor(HELM_CHART_CONTENT, packaged.digest, packaged.size)],
        annotations=chart_annotations(chart_metadata, created=created),
    )
    return config, manifest


def push_chart(
    client: RegistryClient,
    repository: str,
    packaged: PackagedChart,
    chart_metadata: Mapping[str, Any],
    *,
    created: str | None = None,
    before_tag: Callable[[ManifestRef], object] | None = None,
) -> PushedChart:
    """Push ``packaged`` to ``repository`` under its version tag; refuse to change a published version.

    ``chart_metadata`` is Chart.yaml as a mapping (``LoadedChart.metadata``); its name and version
    must be the archive's (``ValueError`` otherwise). ``created`` (RFC 3339) adds the
    ``org.opencontainers.image.created`` annotation; leave it out to keep pushes reproducible.
    Order: HEAD the tag (same digest -> no-op; other digest -> ``TagConflict``, nothing written),
    then the config and chart blobs, then the manifest via ``put_manifest_immutable`` (which checks
    the tag again, narrowing the window for a concurrent publisher). With ``before_tag`` (e.g.
    signing), the manifest is first put by digest and ``before_tag(ref)`` called before the tag
    is put, so the tag never points at content the hook has not seen; it is also called when the
    tag already holds this manifest (a resumed push), and what it raises leaves the tag unwritten.
    """
    if chart_metadata.get("name") != packaged.name or str(chart_metadata.get("version")) != packaged.version:
        raise ValueError(
            f"chart metadata says {chart_metadata.get('name')}:{chart_metadata.get('version')} but the archive is "
            f"{packaged.name}:{packaged.version}; pass the metadata of the packaged chart"
        )
    tag = oci_tag(packaged.version)
    config, manifest = build_chart_manifest(packaged, chart_metadata, created=created)
    manifest_digest = sha256_digest(manifest)
    ref = ManifestRef(manifest_digest, OCI_MANIFEST, len(manifest))
    existing = client.head_manifest(repository, tag)
    if existing is not None:
        if existing.digest != manifest_digest:
            raise TagConflict(repository, tag, existing.digest, manifest_digest, registry=client.host)
        if before_tag is not None:
            before_tag(ref)
        return PushedChart(manifest_digest, packaged.size, tag, len(manifest), created=False)
    client.push_blob(repository, sha256_digest(config), len(config), config)
    client.push_blob(repository, packaged.digest, packaged.size, packaged.data)
    if before_tag is not None:
        client.put_manifest(repository, manifest_digest, manifest, OCI_MANIFEST)
        before_tag(ref)
    result = client.put_manifest_immutable(repository, tag, manifest, OCI_MANIFEST)
    return PushedChart(result.digest, packaged.size, tag, len(manifest), created=result.created)
