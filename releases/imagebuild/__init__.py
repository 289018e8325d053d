"""The Docker-engine side of the image pipeline: source checkout, build, export, scan, SBOM.

Plain Python (no Django): the Celery tasks call these functions and store the results.
"""

from releases.imagebuild import buildkit, emulation
from releases.imagebuild.buildkit import BuildSecret, BuildStep, BuiltImage
from releases.imagebuild.dockerfile import final_base_image
from releases.imagebuild.engine import build_platform_image, connect_engine, parse_platform, platform_matches
from releases.imagebuild.errors import (
    BuildFailed,
    BuildkitUnavailable,
    BuildPathError,
    DockerfileError,
    EmulationMissing,
    EngineUnavailable,
    ExportError,
    ImageBuildError,
    SbomError,
    ScannerError,
    SourceError,
    SyftNotInstalled,
)
from releases.imagebuild.export import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Blob,
    ExportedImage,
    export_archive,
    export_image,
    load_export,
    write_oci_layout,
)
from releases.imagebuild.sbom import find_syft, generate_sbom, package_count
from releases.imagebuild.scan import (
    REQUIRED_OCI_LABELS,
    SEVERITIES,
    Finding,
    Severity,
    run_external_scanner,
    scan_image,
    scanner_argv,
    severity_at_least,
)
from releases.imagebuild.source import build_paths, checkout, read_file_at

__all__ = [
    "OCI_CONFIG",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "REQUIRED_OCI_LABELS",
    "SEVERITIES",
    "Blob",
    "BuildFailed",
    "BuildPathError",
    "BuildSecret",
    "BuildStep",
    "BuiltImage",
    "BuildkitUnavailable",
    "EmulationMissing",
    "DockerfileError",
    "EngineUnavailable",
    "ExportError",
    "ExportedImage",
    "Finding",
    "ImageBuildError",
    "SbomError",
    "ScannerError",
    "Severity",
    "SourceError",
    "SyftNotInstalled",
    "build_paths",
    "build_platform_image",
    "buildkit",
    "emulation",
    "checkout",
    "read_file_at",
    "connect_engine",
    "export_archive",
    "export_image",
    "final_base_image",
    "find_syft",
    "generate_sbom",
    "load_export",
    "package_count",
    "parse_platform",
    "platform_matches",
    "run_external_scanner",
    "scan_image",
    "scanner_argv",
    "severity_at_least",
    "write_oci_layout",
]
