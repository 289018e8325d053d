"""scan_image on exact layer contents, and run_external_scanner with a fake scanner script."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from releases.imagebuild import (
    REQUIRED_OCI_LABELS,
    ExportedImage,
    Finding,
    ScannerError,
    export_archive,
    run_external_scanner,
    scan_image,
    severity_at_least,
)
from tests.imagebuild import LayerSpec, chunks, saved_archive

# Built by concatenation so that this file does not itself look like it holds secrets.
PEM_KEY = ("-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtest\n-----END RSA PRIVATE KEY-----\n").encode()
OPENSSH_KEY = ("-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n").encode()
ENCRYPTED_KEY = ("-----BEGIN " + "ENCRYPTED PRIVATE KEY-----\nMIIF\n").encode()
AWS_KEY = "AKIA" + "Q7RZ2TESTKEY4XYZ"
ALL_LABELS = {label: "x" for label in REQUIRED_OCI_LABELS}


def _image(
    tmp_path: Path,
    layers: list[LayerSpec],
    *,
    user: str = "1000",
    labels: dict[str, str] | None = None,
    name: str = "img",
) -> ExportedImage:
    data = saved_archive(layers, user=user, labels=ALL_LABELS if labels is None else labels)
    return export_archive(chunks(data), tmp_path / name)


def _by_check(findings: list[Finding]) -> dict[str, list[Finding]]:
    result: dict[str, list[Finding]] = {}
    for finding in findings:
        result.setdefault(finding.check, []).append(finding)
    return result


def test_clean_image_has_no_findings(tmp_path: Path) -> None:
    image = _image(tmp_path, [{"app": None, "app/main.py": b"print('hi')\n", "app/.env": b"DEBUG=1\nKEY=\n"}])
    assert scan_image(image, list(REQUIRED_OCI_LABELS), 10 * 2**20) == []


def test_secrets_are_found(tmp_path: Path) -> None:
    image = _image(
        tmp_path,
        [
            {"root/.ssh/id_rsa": PEM_KEY, "etc/ssh/host_key": OPENSSH_KEY},
            {"srv/config.py": f"AWS_ACCESS_KEY_ID = '{AWS_KEY}'\n".encode()},
            {
                "srv/.env": b"# comment\nexport DB_PASSWORD='hunter2'\nAPI_TOKEN=abc # note\nEMPTY_SECRET=\n"
                b"FROM_ENV_KEY=${OTHER}\nNAME=app\n",
                "srv/.env.example": b"DB_PASSWORD=changeme\n",
                "srv/docs.md": b"use AKIAIOSFODNN7EXAMPLE in examples\n",
                "srv/enc.pem": ENCRYPTED_KEY,
            },
        ],
    )
    checks = _by_check(scan_image(image, list(REQUIRED_OCI_LABELS), 10 * 2**20))
    keys = {finding.path: finding for finding in checks["secrets.private-key"]}
    assert keys["/root/.ssh/id_rsa"].severity == "critical"
    assert "RSA PRIVATE KEY" in keys["/root/.ssh/id_rsa"].message
    assert "layer 1/3" in keys["/root/.ssh/id_rsa"].message
    assert keys["/etc/ssh/host_key"].severity == "critical"
    assert keys["/srv/enc.pem"].severity == "high"
    aws = {finding.path: finding for finding in checks["secrets.aws-access-key"]}
    assert aws["/srv/config.py"].severity == "high"
    assert AWS_KEY not in aws["/srv/config.py"].message  # redacted
    assert "AKIA…4XYZ" in aws["/srv/config.py"].message
    assert aws["/srv/docs.md"].severity == "low"
    dotenv = {finding.path: finding for finding in checks["secrets.dotenv"]}
    assert dotenv["/srv/.env"].severity == "high"
    assert "API_TOKEN, DB_PASSWORD" in dotenv["/srv/.env"].message
    assert "hunter2" not in dotenv["/srv/.env"].message
    assert "EMPTY_SECRET" not in dotenv["/srv/.env"].message
    assert "FROM_ENV_KEY" not in dotenv["/srv/.env"].message
    assert dotenv["/srv/.env.example"].severity == "low"
    blocking = severity_at_least(scan_image(image, [], None), "high")
    assert {f.path for f in blocking} == {
        "/root/.ssh/id_rsa",
        "/etc/ssh/host_key",
        "/srv/enc.pem",
        "/srv/config.py",
        "/srv/.env",
    }


def test_deleted_secret_is_still_reported(tmp_path: Path) -> None:
    image = _image(
        tmp_path,
        [
            {"app/.env": b"SECRET_KEY=s3cr3t\n", "keys/server.pem": PEM_KEY, "keep.pem": PEM_KEY},
            {"app/.wh..env": b"", "keys/.wh..wh..opq": b""},
        ],
    )
    findings = {f.path: f for f in scan_image(image, [], None)}
    assert set(findings) == {"/app/.env", "/keys/server.pem", "/keep.pem"}
    assert "removed or replaced in layer 2" in findings["/app/.env"].message
    assert "still extractable" in findings["/keys/server.pem"].message
    assert "removed" not in findings["/keep.pem"].message
    assert findings["/app/.env"].severity == "high"


def test_binary_files_ignored_paths_and_read_limit(tmp_path: Path) -> None:
    late = b"x" * 5000 + PEM_KEY
    image = _image(
        tmp_path,
        [
            {
                "bin/tool": b"\x7fELF\x00\x00" + PEM_KEY,
                "usr/lib/python3/test/key.pem": PEM_KEY,
                "late.txt": late,
            }
        ],
    )
    assert scan_image(image, [], None, ignore_paths=["/usr/lib/python3/test/*"], read_limit=4096) == []
    found = scan_image(image, [], None, read_limit=1 << 20)
    assert {f.path for f in found} == {"/usr/lib/python3/test/key.pem", "/late.txt"}


def test_labels_size_and_root_user(tmp_path: Path) -> None:
    image = _image(
        tmp_path,
        [{"a": b"a"}],
        user="",
        labels={"org.opencontainers.image.version": "1.0", "org.opencontainers.image.source": " "},
    )
    checks = _by_check(scan_image(image, list(REQUIRED_OCI_LABELS), 10))
    assert sorted(f.path for f in checks["labels.required"]) == [
        "org.opencontainers.image.created",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.source",
    ]
    assert all(f.severity == "high" for f in checks["labels.required"])
    assert checks["size.budget"][0].severity == "high"
    assert checks["user.root"][0].severity in ("low", "medium")
    assert "no User is set" in checks["user.root"][0].message
    for user in ("root", "0", "0:0", "root:wheel"):
        other = _image(tmp_path, [{"a": b"a"}], user=user, name=f"u-{user}")
        assert [f.check for f in scan_image(other, [], None)] == ["user.root"]
    for user in ("1000", "app", "65534:65534"):
        other = _image(tmp_path, [{"a": b"a"}], user=user, name=f"u-{user}")
        assert scan_image(other, [], None) == []


def test_severity_at_least() -> None:
    findings = [Finding(severity, "c", "", "") for severity in ("low", "medium", "high", "critical")]
    assert [f.severity for f in severity_at_least(findings, "high")] == ["high", "critical"]
    assert len(severity_at_least(findings, "low")) == 4
    assert severity_at_least(findings[:2], "high") == []
    with pytest.raises(ValueError):
        severity_at_least(findings, "severe")  # type: ignore[arg-type]


# --- external scanner --------------------------------------------------------------------------

TRIVY = {
    "SchemaVersion": 2,
    "ArtifactName": "reg/app:1",
    "Results": [
        {
            "Target": "reg/app:1 (debian 12.5)",
            "Vulnerabilities": [
                {
                    "VulnerabilityID": "CVE-2024-0001",
                    "PkgName": "openssl",
                    "InstalledVersion": "3.0.11",
                    "FixedVersion": "3.0.13",
                    "Severity": "CRITICAL",
                    "Title": "bad thing",
                },
                {
                    "VulnerabilityID": "CVE-2024-0002",
                    "PkgName": "zlib",
                    "InstalledVersion": "1.2",
                    "Severity": "LOW",
                },
                {"VulnerabilityID": "CVE-2024-0003", "PkgName": "x", "Severity": "UNKNOWN"},
            ],
        },
        {"Target": "app/requirements.txt", "Vulnerabilities": None},
    ],
}
GRYPE = {
    "matches": [
        {
            "vulnerability": {"id": "GHSA-xxxx", "severity": "High", "fix": {"versions": ["2.0"]}},
            "artifact": {"name": "requests", "version": "1.0"},
        }
    ]
}


def _fake_scanner(tmp_path: Path, output: str, exit_code: int = 0) -> Path:
    """A stand-in for trivy/grype: records its argv, prints ``output``, exits with ``exit_code``."""
    (tmp_path / "output.txt").write_text(output)
    script = tmp_path / "fake-scanner"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys\n"
        f"here = pathlib.Path({str(tmp_path)!r})\n"
        "(here / 'argv.json').write_text(json.dumps(sys.argv[1:]))\n"
        "sys.stdout.write((here / 'output.txt').read_text())\n"
        "sys.stderr.write('scanner diagnostics\\n')\n"
        f"sys.exit({exit_code})\n"
    )
    os.chmod(script, 0o755)
    return script


def test_trivy_output_names_the_platform_not_the_layout_path(tmp_path: Path) -> None:
    layout = tmp_path / "export" / "linux-amd64"
    trivy = {**TRIVY, "ArtifactName": str(layout)}
    trivy["Results"] = [{**TRIVY["Results"][0], "Target": f"{layout} (debian 12.5)"}, *TRIVY["Results"][1:]]
    script = _fake_scanner(tmp_path, json.dumps(trivy), exit_code=1)  # trivy --exit-code 1
    findings = run_external_scanner([str(script), "image", "-f", "json", "--input"], layout, name="linux/amd64")
    assert json.loads((tmp_path / "argv.json").read_text()) == ["image", "-f", "json", "--input", str(layout)]
    assert [f.severity for f in findings] == ["critical", "low", "low"]
    assert findings[0].check == "scanner.vulnerability"
    assert findings[0].path == "linux/amd64 (debian 12.5):openssl"
    assert findings[0].message == "CVE-2024-0001 in openssl 3.0.11 (fixed in 3.0.13): bad thing"


def test_grype_output_and_layout_placeholder(tmp_path: Path) -> None:
    script = _fake_scanner(tmp_path, json.dumps(GRYPE))
    findings = run_external_scanner([str(script), "-o", "json", "oci-dir:{layout}"], tmp_path / "layout")
    assert json.loads((tmp_path / "argv.json").read_text()) == ["-o", "json", f"oci-dir:{tmp_path / 'layout'}"]
    assert findings == [
        Finding("high", "scanner.vulnerability", "requests", "GHSA-xxxx in requests 1.0 (fixed in 2.0)")
    ]


def test_registry_reference_placeholder_is_refused_with_the_fix(tmp_path: Path) -> None:
    script = _fake_scanner(tmp_path, json.dumps(GRYPE))
    with pytest.raises(ScannerError, match=r"not pushed yet .* with \{layout\}, e\.g\. `trivy image"):
        run_external_scanner([str(script), "registry:{image}"], tmp_path / "layout")
    assert not (tmp_path / "argv.json").exists()


def test_unknown_json_gives_one_finding(tmp_path: Path) -> None:
    script = _fake_scanner(tmp_path, json.dumps({"tool": "other", "issues": 3}))
    findings = run_external_scanner([str(script)], tmp_path / "layout", name="linux/arm64/v8")
    assert len(findings) == 1
    assert findings[0].check == "scanner.unparsed"
    assert findings[0].path == "linux/arm64/v8"
    assert '"issues": 3' in findings[0].message


@pytest.mark.parametrize(
    ("output", "named"),
    [
        ({"Results": ["not an object"]}, "1 of 1 Results entries are not objects"),
        ({"Results": [{"Target": "t", "Vulnerabilities": "many"}]}, "Vulnerabilities is str, not a list"),
        ({"Results": {"Target": "t"}}, "Results is dict, not a list"),
        ({"matches": [7, {"vulnerability": "x", "artifact": []}]}, "1 of 2 matches entries are not objects"),
    ],
)
def test_known_output_of_an_odd_shape_is_a_finding_not_an_exception(tmp_path: Path, output, named) -> None:
    script = _fake_scanner(tmp_path, json.dumps(output))
    findings = run_external_scanner([str(script)], tmp_path / "layout", name="linux/amd64")
    unparsed = [f for f in findings if f.check == "scanner.unparsed"]
    assert len(unparsed) == 1 and named in unparsed[0].message, findings
    assert unparsed[0].path == "linux/amd64" and unparsed[0].severity == "medium"


def test_odd_entries_are_skipped_and_the_good_ones_kept(tmp_path: Path) -> None:
    output = {**GRYPE, "matches": [*GRYPE["matches"], "garbage"]}
    script = _fake_scanner(tmp_path, json.dumps(output))
    findings = run_external_scanner([str(script)], tmp_path / "layout")
    assert [f.check for f in findings] == ["scanner.vulnerability", "scanner.unparsed"]
    assert findings[0].message == "GHSA-xxxx in requests 1.0 (fixed in 2.0)"


def test_json_nested_too_deep_is_a_scanner_error(tmp_path: Path) -> None:
    script = _fake_scanner(tmp_path, "[" * 200_000 + "]" * 200_000)
    with pytest.raises(ScannerError, match="nested too deep"):
        run_external_scanner([str(script)], tmp_path / "layout")


def test_scanner_failures(tmp_path: Path) -> None:
    script = _fake_scanner(tmp_path, "fatal: no such image", exit_code=2)
    with pytest.raises(ScannerError, match="exited with 2 without JSON output: scanner diagnostics"):
        run_external_scanner([str(script)], tmp_path / "layout")
    with pytest.raises(ScannerError, match="not installed"):
        run_external_scanner([str(tmp_path / "missing-scanner")], tmp_path / "layout")


def test_scanner_timeout_stops_the_tool_a_wrapper_started(tmp_path: Path) -> None:
    # A wrapper (like a pip entry point) whose child keeps stdout open: killing only the wrapper
    # would leave the caller waiting for the child.
    wrapper = tmp_path / "wrapper-scanner"
    wrapper.write_text("#!/bin/sh\nsleep 60\necho '{}'\n")
    os.chmod(wrapper, 0o755)
    started = time.monotonic()
    with pytest.raises(ScannerError, match="timed out after 1s"):
        run_external_scanner([str(wrapper)], tmp_path / "layout", timeout=1)
    assert time.monotonic() - started < 20
