"""Plain-Python OCI distribution client (no Django imports).

Speaks the OCI distribution spec over HTTP(S) with anonymous, basic and bearer-token auth; see
:class:`RegistryClient`.
"""

from releases.oci.auth import Challenge, Credentials, merge_scopes, parse_www_authenticate, repository_scope
from releases.oci.client import BlobSource, PutResult, RegistryClient
from releases.oci.digest import file_digest, sha256_digest
from releases.oci.errors import (
    BlobUploadError,
    DigestMismatch,
    ManifestInvalid,
    ManifestNotFound,
    RegistryAuthError,
    RegistryError,
    RegistryErrorDetail,
    RegistryUnavailable,
    TagConflict,
)
from releases.oci.index import PlatformManifest, build_index
from releases.oci.manifest import Descriptor, ManifestRef, build_manifest, canonical_json
from releases.oci.names import is_digest, is_loopback, validate_digest, validate_repository, validate_tag
from releases.oci.throttle import Throttle, parse_retry_after

__all__ = [
    "BlobSource",
    "BlobUploadError",
    "Challenge",
    "Credentials",
    "Descriptor",
    "DigestMismatch",
    "ManifestInvalid",
    "ManifestNotFound",
    "ManifestRef",
    "PlatformManifest",
    "PutResult",
    "RegistryAuthError",
    "RegistryClient",
    "RegistryError",
    "RegistryErrorDetail",
    "RegistryUnavailable",
    "TagConflict",
    "Throttle",
    "build_index",
    "build_manifest",
    "canonical_json",
    "file_digest",
    "is_digest",
    "is_loopback",
    "merge_scopes",
    "parse_retry_after",
    "parse_www_authenticate",
    "repository_scope",
    "sha256_digest",
    "validate_digest",
    "validate_repository",
    "validate_tag",
]
