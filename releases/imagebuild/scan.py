"""Built-in checks on an exported image, and an optional external vulnerability scanner.

Both read the export before anything is pushed: the built-in checks its layers, the external
scanner (trivy, grype) its OCI image layout directory.

The built-in checks read the exported layers (gzip tar streams, never extracted to disk): required
OCI labels, private keys and credentials in files, the size budget and a root user. Findings carry
a severity (``low`` < ``medium`` < ``high`` < ``critical``); the caller decides with
:func:`severity_at_least` which ones block a release.

Secrets are never copied into a finding's message: only the file, the kind and (for AWS keys) a
redacted form.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import subprocess
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from releases.imagebuild.errors import ScannerError
from releases.imagebuild.export import ExportedImage
from releases.imagebuild.process import run_bounded

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

REQUIRED_OCI_LABELS: tuple[str, ...] = (
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.source",
    "org.opencontainers.image.created",
)
SEVERITY_MISSING_LABEL: Severity = "high"
SEVERITY_OVER_BUDGET: Severity = "high"
SEVERITY_ROOT_USER: Severity = "medium"

READ_LIMIT = 256 * 1024  # bytes read from the start of each file
_BINARY_PROBE = 8192

_PEM_RE = re.compile(rb"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY(?: BLOCK)?-----")
_AWS_KEY_RE = re.compile(rb"(?<![A-Z0-9])((?:AKIA|ASIA)[0-9A-Z]{16})(?![A-Z0-9])")
_ENV_LINE_RE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$")
_SECRET_NAME_RE = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)
_PLACEHOLDER_RE = re.compile(r"^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$")
_ENV_TEMPLATE_SUFFIXES = (".example", ".sample", ".template", ".dist", ".tmpl")


@dataclass(frozen=True)
class Finding:
    severity: Severity
    check: str
    path: str
    message: str


def severity_at_least(findings: Iterable[Finding], threshold: Severity) -> list[Finding]:
    """The findings whose severity is ``threshold`` or worse (empty list: nothing blocks)."""
    if threshold not in _RANK:
        raise ValueError(f"unknown severity {threshold!r}; use one of {', '.join(SEVERITIES)}")
    return [finding for finding in findings if _RANK[finding.severity] >= _RANK[threshold]]


def _is_root(user: str) -> bool:
    name = user.strip().split(":", 1)[0]
    return name in ("", "root", "0")


def _is_env_file(name: str) -> bool:
    base = posixpath.basename(name)
    return base == ".env" or base.startswith(".env.") or base.endswith(".env")


def _env_value(raw: str) -> str:
    value = raw.strip()
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1)
        return value[1:end] if end > 0 else value[1:]
    return re.split(r"\s+#", value, maxsplit=1)[0].strip()


def _member_path(name: str) -> str:
    """``./etc/x`` / ``etc/x`` / ``/etc/x`` -> ``/etc/x``."""
    while name.startswith("./"):
        name = name[2:]
    return posixpath.normpath("/" + name.lstrip("/"))


def _redact(key: str) -> str:
    return f"{key[:4]}…{key[-4:]}"


@dataclass
class _LayerFinding:
    layer: int
    finding: Finding


class _LayerScanner:
    def __init__(self, ignore_paths: Sequence[str], read_limit: int):
        self.ignore_paths = ignore_paths
        self.read_limit = read_limit
        self.found: list[_LayerFinding] = []
        self.removed: list[tuple[int, str, bool]] = []  # (layer, path, is_opaque_dir)
        self.written: list[tuple[int, str]] = []

    def ignored(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in self.ignore_paths)

    def scan_layer(self, index: int, fileobj: Any) -> None:
        with tarfile.open(fileobj=fileobj, mode="r|gz") as tar:
            for member in tar:
                path = _member_path(member.name)
                directory, base = posixpath.split(path)
                if base == ".wh..wh..opq":
                    self.removed.append((index, directory, True))
                    continue
                if base.startswith(".wh."):
                    self.removed.append((index, posixpath.join(directory, base[4:]), False))
                    continue
                if not member.isreg():
                    continue
                self.written.append((index, path))
                if member.size == 0 or self.ignored(path):
                    continue
                source = tar.extractfile(member)
                if source is None:
                    continue
                head = source.read(self.read_limit)
                if b"\x00" in head[:_BINARY_PROBE]:
                    continue  # binary: skipped
                self.check_content(index, path, head)

    def add(self, index: int, severity: Severity, check: str, path: str, message: str) -> None:
        self.found.append(_LayerFinding(index, Finding(severity, check, path, message)))

    def check_content(self, index: int, path: str, head: bytes) -> None:
        for match in _PEM_RE.finditer(head):
            kind = match.group(1).decode().strip()
            severity: Severity = "high" if kind == "ENCRYPTED" else "critical"
            label = f"{kind} PRIVATE KEY" if kind else "PRIVATE KEY"
            self.add(index, severity, "secrets.private-key", path, f"PEM {label} block in the file")
            break
        keys = sorted({match.group(1).decode() for match in _AWS_KEY_RE.finditer(head)})
        if keys:
            real = [key for key in keys if not key.endswith("EXAMPLE")]
            severity = "high" if real else "low"
            shown = ", ".join(_redact(key) for key in (real or keys)[:5])
            note = "" if real else " (AWS documentation example keys)"
            self.add(index, severity, "secrets.aws-access-key", path, f"AWS access key id {shown}{note}")
        if _is_env_file(path):
            names = []
            for line in head.decode("utf-8", errors="replace").splitlines():
                match = _ENV_LINE_RE.match(line)
                if not match or not _SECRET_NAME_RE.search(match.group(1)):
                    continue
                value = _env_value(match.group(2))
                if value and not _PLACEHOLDER_RE.match(value):
                    names.append(match.group(1))
            if names:
                template = posixpath.basename(path).endswith(_ENV_TEMPLATE_SUFFIXES)
                severity = "low" if template else "high"
                self.add(
                    index,
                    severity,
                    "secrets.dotenv",
                    path,
                    f"env file assigns secret-looking variables: {', '.join(sorted(set(names)))}",
                )

    def findings(self, layer_count: int) -> list[Finding]:
        result = []
        for item in self.found:
            later = self._hidden_by(item.layer, item.finding.path)
            finding = item.finding
            where = f"layer {item.layer + 1}/{layer_count}"
            if later is not None:
                message = (
                    f"{finding.message} ({where}; removed or replaced in layer {later + 1}, "
                    f"but still extractable from the image)"
                )
            else:
                message = f"{finding.message} ({where})"
            result.append(Finding(finding.severity, finding.check, finding.path, message))
        return result

    def _hidden_by(self, layer: int, path: str) -> int | None:
        for index, removed, opaque in self.removed:
            if index <= layer:
                continue
            # A whiteout hides the path and everything below it; an opaque marker what is below.
            if (path == removed and not opaque) or path.startswith(removed.rstrip("/") + "/"):
                return index
        for index, written in self.written:
            if index > layer and written == path:
                return index
        return None


def scan_image(
    image: ExportedImage,
    required_labels: Sequence[str] = REQUIRED_OCI_LABELS,
    max_size_bytes: int | None = None,
    *,
    ignore_paths: Sequence[str] = (),
    read_limit: int = READ_LIMIT,
) -> list[Finding]:
    """Run the built-in checks on an exported image.

    - ``labels.required`` (high): a label of ``required_labels`` is missing or empty.
    - ``secrets.private-key`` (critical; high when encrypted), ``secrets.aws-access-key`` (high),
      ``secrets.dotenv`` (high): a file holds a PEM private key, an AWS access key id, or a ``.env``
      file assigns a non-empty value to a PASSWORD/SECRET/TOKEN/KEY/CREDENTIAL variable. Only the
      first ``read_limit`` bytes of each regular file are read; binary files are skipped. A secret
      that a later layer deletes (whiteout) is still reported: it stays in the pushed layer.
    - ``size.budget`` (high): the compressed size exceeds ``max_size_bytes``.
    - ``user.root`` (medium): the image runs as root.

    ``ignore_paths`` are fnmatch patterns of absolute in-image paths the secret checks skip.
    """
    findings: list[Finding] = []
    for label in required_labels:
        if not str(image.labels.get(label) or "").strip():
            findings.append(
                Finding(SEVERITY_MISSING_LABEL, "labels.required", label, f"required label {label} is missing")
            )
    scanner = _LayerScanner(ignore_paths, read_limit)
    for index, layer in enumerate(image.layers):
        with layer.path.open("rb") as handle:
            scanner.scan_layer(index, handle)
    findings.extend(scanner.findings(len(image.layers)))
    if max_size_bytes is not None and image.size > max_size_bytes:
        findings.append(
            Finding(
                SEVERITY_OVER_BUDGET,
                "size.budget",
                "",
                f"image is {image.size / 2**20:.1f} MiB compressed; the budget is {max_size_bytes / 2**20:.1f} MiB",
            )
        )
    if _is_root(image.user):
        shown = f"User is {image.user!r}" if image.user else "no User is set"
        findings.append(
            Finding(
                SEVERITY_ROOT_USER,
                "user.root",
                "",
                f"the image runs as root ({shown}); add a USER with an unprivileged uid",
            )
        )
    return findings


# --- optional external scanner ------------------------------------------------------------------

_SCANNER_SEVERITY: dict[str, Severity] = {
    "critical": "critical",
    "high": "high",
    "medium": "medium",
    "moderate": "medium",
    "low": "low",
    "negligible": "low",
    "unknown": "low",
}


def _severity(value: Any) -> Severity:
    return _SCANNER_SEVERITY.get(str(value or "").strip().lower(), "low")


def _objects(value: Any, where: str, odd: list[str]) -> list[dict[str, Any]]:
    """The JSON objects of the list ``value``; anything else in it (or ``value`` not a list) is
    noted in ``odd`` by ``where``, so an odd shape becomes a finding, never an exception."""
    if value is None:
        return []
    if not isinstance(value, list):
        odd.append(f"{where} is {type(value).__name__}, not a list")
        return []
    objects = [item for item in value if isinstance(item, dict)]
    if len(objects) < len(value):
        odd.append(f"{len(value) - len(objects)} of {len(value)} {where} entries are not objects")
    return objects


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _trivy_findings(data: dict[str, Any], odd: list[str]) -> list[Finding]:
    findings: list[Finding] = []
    for result in _objects(data.get("Results"), "Results", odd):
        target = str(result.get("Target") or "")
        for vuln in _objects(result.get("Vulnerabilities"), "Vulnerabilities", odd):
            package = str(vuln.get("PkgName") or "")
            installed = vuln.get("InstalledVersion") or "?"
            fixed = vuln.get("FixedVersion")
            title = vuln.get("Title") or vuln.get("Description") or ""
            message = f"{vuln.get('VulnerabilityID', '?')} in {package} {installed}"
            message += f" (fixed in {fixed})" if fixed else " (no fix yet)"
            if title:
                message += f": {str(title)[:200]}"
            findings.append(
                Finding(_severity(vuln.get("Severity")), "scanner.vulnerability", f"{target}:{package}", message)
            )
        for secret in _objects(result.get("Secrets"), "Secrets", odd):
            findings.append(
                Finding(
                    _severity(secret.get("Severity")),
                    "scanner.secret",
                    target,
                    f"{secret.get('RuleID', '?')}: {secret.get('Title', '')}".strip(),
                )
            )
    return findings


def _grype_findings(data: dict[str, Any], odd: list[str]) -> list[Finding]:
    findings: list[Finding] = []
    for match in _objects(data.get("matches"), "matches", odd):
        vuln = _object(match.get("vulnerability"))
        artifact = _object(match.get("artifact"))
        fixes = _object(vuln.get("fix")).get("versions") or []
        fixes = [str(fix) for fix in fixes] if isinstance(fixes, list) else [str(fixes)]
        package = str(artifact.get("name") or "")
        message = f"{vuln.get('id', '?')} in {package} {artifact.get('version') or '?'}"
        message += f" (fixed in {', '.join(fixes)})" if fixes else " (no fix yet)"
        findings.append(Finding(_severity(vuln.get("severity")), "scanner.vulnerability", package, message))
    return findings


def parse_scanner_output(data: Any, image_ref: str) -> list[Finding]:
    """Findings from trivy (``Results[].Vulnerabilities[]``) or grype (``matches[]``) JSON.

    Output of another shape gives one ``scanner.unparsed`` finding quoting it; entries of an
    unexpected type inside known output are skipped and named in a ``scanner.unparsed`` finding
    beside the others. Never raises for the scanner's output."""
    odd: list[str] = []
    if isinstance(data, dict) and ("Results" in data or data.get("SchemaVersion") is not None):
        findings = _trivy_findings(data, odd)
    elif isinstance(data, dict) and "matches" in data:
        findings = _grype_findings(data, odd)
    else:
        summary = json.dumps(data, sort_keys=True)[:500]
        return [Finding("medium", "scanner.unparsed", image_ref, f"unrecognised scanner output: {summary}")]
    if odd:
        detail = "; ".join(odd)
        findings.append(
            Finding("medium", "scanner.unparsed", image_ref, f"scanner output of an unexpected shape: {detail}")
        )
    return findings


LAYOUT_PLACEHOLDER = "{layout}"


def scanner_argv(command: Sequence[str], layout_dir: Path | str) -> list[str]:
    """``{layout}`` in an argument is replaced by ``layout_dir``; without it the directory is appended.

    Refuses (:class:`ScannerError`) the old ``{image}`` placeholder: the scan runs before the push,
    so no registry reference can be pulled yet; the scanner must read the exported layout.
    """
    if any("{image}" in arg for arg in command):
        raise ScannerError(
            "IMAGE_SCANNER_COMMAND uses {image}, a registry reference that is not pushed yet when the scan "
            "runs; scan the exported OCI layout instead with {layout}, e.g. "
            "`trivy image -f json -q --input {layout}` or `grype -o json oci-dir:{layout}`"
        )
    if any(LAYOUT_PLACEHOLDER in arg for arg in command):
        return [arg.replace(LAYOUT_PLACEHOLDER, str(layout_dir)) for arg in command]
    return [*command, str(layout_dir)]


def _named(finding: Finding, layout: str, name: str) -> Finding:
    """The finding with the local layout path (trivy's ``Target``) replaced by the image's name."""
    return Finding(
        finding.severity,
        finding.check,
        finding.path.replace(layout, name),
        finding.message.replace(layout, name),
    )


def run_external_scanner(
    command: Sequence[str], layout_dir: Path | str, *, name: str = "image", timeout: float = 900.0
) -> list[Finding]:
    """Run a configured scanner on the OCI image layout ``layout_dir``; it prints JSON on stdout.

    The layout is what :func:`releases.imagebuild.export_image` wrote (``ExportedImage.layout_dir``),
    so the image is scanned before it is pushed. The directory replaces ``{layout}`` in an
    argument, or is appended as the last argument (see :func:`scanner_argv`). Commands that work:

    - trivy: ``trivy image -f json -q --input {layout}`` (or ``trivy image -f json -q --input``);
      add ``--skip-db-update --offline-scan`` where the machine has no network.
    - grype: ``grype -o json oci-dir:{layout}``; where the machine has no network, keep it from
      updating its database: ``env GRYPE_DB_AUTO_UPDATE=false grype -o json oci-dir:{layout}``.

    trivy (``Results[].Vulnerabilities[]``, ``Secrets[]``) and grype (``matches[]``) JSON become
    findings; the layout's local path in them (trivy's ``Target``) is replaced by ``name`` (e.g.
    the platform), so findings do not depend on the build directory. A non-zero exit status is
    fine when stdout is JSON (``trivy --exit-code 1`` reports findings that way). Raises
    :class:`ScannerError` when the scanner cannot run, times out or prints no JSON.
    """
    if not command:
        raise ScannerError("no scanner command configured")
    argv = scanner_argv(command, layout_dir)
    try:
        result = run_bounded(argv, timeout=timeout)
    except (FileNotFoundError, PermissionError) as exc:
        raise ScannerError(f"scanner {argv[0]!r} is not installed or cannot be run: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ScannerError(f"scanner {argv[0]!r} timed out after {timeout:.0f}s") from exc
    stderr_tail = "\n".join(result.stderr.decode(errors="replace").strip().splitlines()[-10:])
    try:
        data = json.loads(result.stdout)
    except RecursionError as exc:
        raise ScannerError(f"scanner {argv[0]!r} printed JSON nested too deep to read") from exc
    except ValueError as exc:
        raise ScannerError(
            f"scanner {argv[0]!r} exited with {result.returncode} without JSON output: {stderr_tail}"
        ) from exc
    layout = str(layout_dir)
    return [_named(finding, layout, name) for finding in parse_scanner_output(data, name)]
