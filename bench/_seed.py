"""The rows the benchmarks measure on, inserted in bulk under the rules the product enforces.

The database's immutability triggers (``releases.database.triggers``) refuse an artifact under a
published release and a dependency under an indexed chart, so every seeder inserts a parent in
the state just before publication (a release ``publishing``, a chart ``uploading``), its children
next, and only then marks the parents published in one ``UPDATE``, as the pipeline's last step
would; nothing switches a trigger off. Call after ``bench._database.use_database``.
(The admin's overview uses the tests' ``seed_release_history``, which inserts no child.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

COMMIT = "a" * 40
IMAGE_NAMES = ("threek8s-frontend", "threek8s-backend")
BATCH = 5000


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def versions(count: int, major: int = 1) -> list[str]:
    """``count`` distinct semantic versions in ascending order: 1.0.0, 1.0.1, ... 1.0.99, 1.1.0, ..."""
    return [f"{major + i // 10_000}.{(i // 100) % 100}.{i % 100}" for i in range(count)]


def published_releases(count: int, platforms: tuple[str, ...] = ()) -> int:
    """``count`` published releases, each with its two available images (their index digests, and
    a platform manifest per platform of ``platforms``), its indexed chart and their three
    artifacts; answers the number of artifacts."""
    from django.db import transaction
    from django.utils import timezone

    from releases.choices import ArtifactType, ImageState, ReleaseState
    from releases.models import DockerImage, ReleaseArtifact, ReleaseVersion
    from releases.versions import column_sort_key

    now = timezone.now()
    names = versions(count)
    with transaction.atomic():
        releases = ReleaseVersion.objects.bulk_create(
            (
                ReleaseVersion(
                    version=v,
                    version_order=column_sort_key(v),
                    commit_sha=COMMIT,
                    pr_number=1,
                    changelog=f"## {v}",
                    state=ReleaseState.PUBLISHING,
                )
                for v in names
            ),
            batch_size=BATCH,
        )
        images = DockerImage.objects.bulk_create(
            (
                DockerImage(
                    name=name,
                    tag=v,
                    tag_order=column_sort_key(v),
                    state=ImageState.AVAILABLE,
                    digest=digest_of(f"{name}:{v}"),
                    size=1000,
                    build_date=now,
                    component=name.removeprefix("threek8s-"),
                    context_path="x/",
                    dockerfile_path="Dockerfile",
                    platform_digests={p: {"digest": digest_of(f"{name}:{v}:{p}"), "size": 500} for p in platforms},
                )
                for v in names
                for name in IMAGE_NAMES
            ),
            batch_size=BATCH,
        )
        charts = indexed_charts(names, dependency=False, created_at=now)
        artifacts = []
        for i, release in enumerate(releases):
            frontend, backend, chart = images[2 * i], images[2 * i + 1], charts[i]
            for kind, image in ((ArtifactType.DOCKER_FRONTEND, frontend), (ArtifactType.DOCKER_BACKEND, backend)):
                artifacts.append(
                    ReleaseArtifact(
                        release=release,
                        type=kind,
                        uri=image.pinned_uri,
                        checksum=image.digest,
                        size=image.size,
                        docker_image=image,
                    )
                )
            artifacts.append(
                ReleaseArtifact(
                    release=release,
                    type=ArtifactType.HELM_CHART,
                    uri=chart.pinned_uri,
                    checksum=chart.digest,
                    size=chart.size,
                    helm_chart=chart,
                )
            )
        ReleaseArtifact.objects.bulk_create(artifacts, batch_size=BATCH)
        ReleaseVersion.objects.filter(pk__in=[r.pk for r in releases]).update(
            state=ReleaseState.PUBLISHED, published_at=now
        )
    return len(artifacts)


def indexed_charts(names: Iterable[str], *, dependency: bool = True, created_at: datetime | None = None) -> list:
    """A chart version per name in ``names``, indexed, each with a ``redis`` dependency when
    ``dependency``: inserted ``uploading``, the dependencies next, then indexed."""
    from django.db import transaction
    from django.utils import timezone

    from releases.choices import ChartState
    from releases.models import ChartDependency, HelmChart
    from releases.versions import column_sort_key

    now = created_at or timezone.now()
    with transaction.atomic():
        charts = HelmChart.objects.bulk_create(
            (
                HelmChart(
                    chart_version=v,
                    app_version=v,
                    version_order=column_sort_key(v),
                    state=ChartState.UPLOADING,
                    description="The threek8s app",
                    digest=digest_of(f"chart:{v}"),
                    size=100,
                    package_digest=digest_of(f"tgz:{v}"),
                )
                for v in names
            ),
            batch_size=BATCH,
        )
        if dependency:
            ChartDependency.objects.bulk_create(
                (
                    ChartDependency(chart=c, name="redis", version="^20.0.0", repository="oci://r.example/charts")
                    for c in charts
                ),
                batch_size=BATCH,
            )
        HelmChart.objects.filter(pk__in=[c.pk for c in charts]).update(state=ChartState.INDEXED, indexed_at=now)
    return charts  # as inserted: their state in memory is still uploading


def releases_with_changelogs(changelog: str) -> tuple[list[str], float]:
    """A release per version of the Release Please ``changelog`` (oldest first), with its stored
    forms (parsed, HTML) as ``create_release`` writes them; answers (versions, seconds the parse
    and render took per release)."""
    import time

    from releases.changelog import split_changelog, stored_forms
    from releases.models import ReleaseVersion
    from releases.versions import column_sort_key

    notes = [n for n in split_changelog(changelog) if n.version][::-1]
    started = time.perf_counter()
    rows = []
    for release in notes:
        parsed, html = stored_forms(release.markdown)
        rows.append(
            ReleaseVersion(
                version=release.version,
                version_order=column_sort_key(release.version),
                commit_sha=COMMIT,
                changelog=release.markdown,
                parsed_changelog=parsed,
                changelog_html=html,
            )
        )
    per_release = (time.perf_counter() - started) / len(rows)
    ReleaseVersion.objects.bulk_create(rows, batch_size=1000)
    analyze("releases_releaseversion")
    return [n.version for n in notes], per_release


def published_images(rows: Iterable[tuple[str, str, str, str]], registry: str) -> None:
    """Image tags as the audit reads them: (repository, tag, digest, kind) rows under ``registry``,
    available (an ``image`` with two platforms, a ``chart`` with one)."""
    from django.utils import timezone

    from releases.choices import ImageState
    from releases.models import DockerImage
    from releases.versions import column_sort_key

    now = timezone.now()
    two = {"linux/amd64": {}, "linux/arm64/v8": {}}
    DockerImage.objects.bulk_create(
        (
            DockerImage(
                name=repository.split("/", 1)[1],
                tag=tag,
                tag_order=column_sort_key(tag),
                registry=registry,
                state=ImageState.AVAILABLE,
                digest=digest,
                size=1000,
                build_date=now,
                platform_digests=two if kind == "image" else {"linux/amd64": {}},
            )
            for repository, tag, digest, kind in rows
        ),
        batch_size=BATCH,
    )


def analyze(*tables: str) -> None:
    """What autovacuum would have done by now: plans see the seeded rows."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(tables)}" if tables else "ANALYZE")
