"""Published releases shaped like ours (an index and two platform manifests per image, the chart),
signed or not, and AdmissionReview documents as the Kubernetes API server sends them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.utils import timezone

from releases.choices import ChartState, ImageState, ReleaseState
from releases.models import DockerImage, HelmChart, ReleaseVersion
from tests.fixtures.factories import digest_of, link_artifacts, make_chart, make_image, make_release
from tests.signing.conftest import make_key_pair

PLATFORMS = ("linux/amd64", "linux/arm64")
TOKEN = "admission-token-for-the-tests-0123456789"


@dataclass
class Published:
    release: ReleaseVersion
    frontend: DockerImage
    backend: DockerImage
    chart: HelmChart

    def platform(self, image: DockerImage, platform: str = "linux/amd64") -> str:
        return image.platform_digests[platform]["digest"]


def _signatures(key_id: str, index: str, platforms: dict) -> dict:
    if not key_id:
        return {}
    found = {index: {"of": "index", "signature": digest_of(f"sig {index}")}}
    for platform, described in platforms.items():
        digest = described["digest"]
        found[digest] = {
            "of": platform,
            "signature": digest_of(f"sig {digest}"),
            "attestation": digest_of(f"att {digest}"),
        }
    return found


def publish(version: str = "1.0.0", *, key_id: str = "", state: str = ReleaseState.PUBLISHED) -> Published:
    """A release at ``state`` (published by default) whose images are available and chart indexed,
    their artifacts recorded; signed by ``key_id`` when given (the signatures recorded as the
    pipeline records them)."""
    release = make_release(version)
    images = {}
    for name in ("threek8s-frontend", "threek8s-backend"):
        index = digest_of(f"{name}:{version}")
        platforms = {
            platform: {"digest": digest_of(f"{name}:{version}:{platform}"), "size": 600} for platform in PLATFORMS
        }
        images[name] = make_image(
            name,
            version,
            ImageState.AVAILABLE,
            digest=index,
            platform_digests=platforms,
            signed_with=key_id,
            signatures=_signatures(key_id, index, platforms),
        )
    chart_digest = digest_of(f"chart:{version}")
    chart = make_chart(
        version,
        ChartState.INDEXED,
        digest=chart_digest,
        size=99,
        signed_with=key_id,
        signatures={chart_digest: {"of": "chart", "signature": digest_of(f"sig {chart_digest}")}} if key_id else {},
    )
    link_artifacts(release, images["threek8s-frontend"], images["threek8s-backend"], chart)
    if state != ReleaseState.DRAFT:
        ReleaseVersion.objects.filter(pk=release.pk).update(state=state, published_at=timezone.now())
        release.refresh_from_db()
    return Published(release, images["threek8s-frontend"], images["threek8s-backend"], chart)


def ours(name: str, rest: str = "") -> str:
    """``<REGISTRY_NAMESPACE>/<name><rest>``."""
    return f"{settings.REGISTRY_NAMESPACE}/{name}{rest}"


def deployment(*images: str, init: tuple[str, ...] = (), name: str = "web") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "initContainers": [{"name": f"init{i}", "image": image} for i, image in enumerate(init)],
                    "containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)],
                },
            },
        },
    }


def review(
    obj: dict | None,
    *,
    kind: str | None = None,
    namespace: str = "shop",
    operation: str = "CREATE",
    dry_run: bool = False,
    old: dict | None = None,
    uid: str | None = None,
) -> dict:
    """An AdmissionReview as the API server sends it (admission.k8s.io/v1)."""
    kind = kind or (obj or old or {}).get("kind", "Pod")
    group, version = {
        "Pod": ("", "v1"),
        "CronJob": ("batch", "v1"),
        "Job": ("batch", "v1"),
    }.get(kind, ("apps", "v1"))
    resource = kind.lower() + "s"
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": ((obj or old or {}).get("metadata") or {}).get("name", ""),
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


@pytest.fixture
def signing(settings, tmp_path):
    """A configured SIGNING_KEY: signatures are required."""
    pair = make_key_pair(tmp_path, "signing")
    settings.SIGNING_PRIVATE_KEY = pair.private_key
    settings.TRUSTED_PUBLIC_KEYS = []
    from releases.adapters.signing_keys import signing_key_id

    return signing_key_id()


@pytest.fixture
def admission_token(settings):
    settings.ADMISSION_TOKEN = TOKEN
    return TOKEN


@pytest.fixture(autouse=True)
def fresh_page_caches():
    """The release list and the chart index are cached per data generation, a counter that restarts
    when a test's data goes (rolled back or truncated): nothing these tests cache may answer for a
    later test at the same generation (test_chart_repository_serves_index_and_packages_to_real_helm
    was served an index.yaml a withdrawal test had cached)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
