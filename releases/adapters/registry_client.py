"""The one way Django code gets an OCI registry client: configured credentials, insecure hosts,
rate-limit patience and upload mode."""

from __future__ import annotations

from django.conf import settings

from releases.oci import RegistryClient


def split_location(location: str) -> tuple[str, str]:
    """``ghcr.io/stianfro/threek8s/x`` -> ``("ghcr.io", "stianfro/threek8s/x")``."""
    host, _, path = location.partition("/")
    return host, path


def registry_client(host: str | None = None, **options) -> RegistryClient:
    """A client for ``host`` (default: the host of ``REGISTRY_NAMESPACE``) with the configured
    credentials; ``options`` override the client's other settings (a probe's short ``timeout``)."""
    configured = {
        "max_retry_after": settings.REGISTRY_MAX_RETRY_AFTER,
        "chunked_upload": settings.REGISTRY_CHUNKED_UPLOAD,
        "upload_chunk_size": settings.REGISTRY_UPLOAD_CHUNK_BYTES,
    }
    return RegistryClient(
        host or split_location(settings.REGISTRY_NAMESPACE)[0],
        username=settings.REGISTRY_USERNAME,
        password=settings.REGISTRY_PASSWORD,
        insecure_hosts=settings.REGISTRY_INSECURE_HOSTS,
        **{**configured, **options},
    )
