"""The source a release is built from: its row, and a checkout of its commit."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings

from ..imagebuild import checkout
from ..models import ReleaseVersion
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
