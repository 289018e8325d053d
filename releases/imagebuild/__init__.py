"""The Docker-engine side of the image pipeline: source checkout, build, export, scan.

Plain Python (no Django): the Celery tasks call these functions and store the results.
"""

from releases.imagebuild.dockerfile import final_base_image
from releases.imagebuild.engine import build_platform_image, connect_engine, parse_platform, platform_matches
from releases.imagebuild.errors import (
    BuildFailed,
    DockerfileError,
    EngineUnavailable,
    ExportError,
    ImageBuildError,
    ScannerError,
    SourceError,
)
from releases.imagebuild.export import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Blob,
    ExportedImage,
    export_archive,
    export_image,
)
from releases.imagebuild.scan import (
    REQUIRED_OCI_LABELS,
    SEVERITIES,
    Finding,
    Severity,
    run_external_scanner,
    scan_image,
    severity_at_least,
)
from releases.imagebuild.source import checkout

__all__ = [
    "OCI_CONFIG",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "REQUIRED_OCI_LABELS",
    "SEVERITIES",
    "Blob",
    "BuildFailed",
    "DockerfileError",
    "EngineUnavailable",
    "ExportError",
    "ExportedImage",
    "Finding",
    "ImageBuildError",
    "ScannerError",
    "Severity",
    "SourceError",
    "build_platform_image",
    "checkout",
    "connect_engine",
    "export_archive",
    "export_image",
    "final_base_image",
    "parse_platform",
    "platform_matches",
    "run_external_scanner",
    "scan_image",
    "severity_at_least",
]
