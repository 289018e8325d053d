"""The source a release is built from: its row, its layout, and a checkout of its commit."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from django.conf import settings

from ..imagebuild import SourceError, checkout, read_file_at
from ..layout import LAYOUT_FILE, MAX_LAYOUT_BYTES, LayoutInvalid, ReleaseLayout, parse_layout
from ..models import ReleaseVersion, default_release_layout
from .errors import PipelineError


def release_of(version: str) -> ReleaseVersion:
    """The release of ``version``; refuses (``PipelineError``) a version no release has."""
    release = ReleaseVersion.objects.filter(version=version).first()
    if release is None:
        raise PipelineError(f"no release {version} exists to say which commit to build; create it first")
    return release


def checkout_source(release: ReleaseVersion, dest: Path) -> Path:
    """A fresh checkout of the release's commit from ``SOURCE_REPOSITORY_URL`` at ``dest``."""
    if not settings.SOURCE_REPOSITORY_URL:
        raise PipelineError("SOURCE_REPOSITORY_URL is not set; point it at the git repository to build")
    shutil.rmtree(dest, ignore_errors=True)
    try:
        return checkout(settings.SOURCE_REPOSITORY_URL, release.commit_sha, dest)
    except Exception as error:  # SourceError and whatever git says: all need a person
        raise PipelineError(str(error)) from error


def read_layout(release: ReleaseVersion) -> ReleaseLayout:
    """The layout of ``release``: ``.release-registry.yaml`` at its commit over the defaults, or the
    defaults when the commit has none (or no ``SOURCE_REPOSITORY_URL`` is set to read it from: the
    build then says so). Only that file is read: the commit is fetched, nothing is checked out.

    Refuses (``LayoutInvalid``, every problem listed) a file the schema refuses, and a repository or
    commit that cannot be read.
    """
    defaults = default_release_layout()
    if not settings.SOURCE_REPOSITORY_URL:
        return replace(defaults, source="defaults (SOURCE_REPOSITORY_URL is not set)")
    Path(settings.BUILD_WORKDIR).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"layout-{release.pk}-", dir=settings.BUILD_WORKDIR))
    try:
        text = read_file_at(
            settings.SOURCE_REPOSITORY_URL, release.commit_sha, LAYOUT_FILE, workdir, max_bytes=MAX_LAYOUT_BYTES
        )
    except SourceError as error:
        raise LayoutInvalid([f"{LAYOUT_FILE}: cannot be read at commit {release.commit_sha[:12]}: {error}"]) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return parse_layout(text, defaults=defaults, source=f"{LAYOUT_FILE} at {release.commit_sha[:12]}")
