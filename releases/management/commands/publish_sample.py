"""Publish the sample threek8s release end to end: the README's main job runs this.

It pushes the multi-arch busybox base image into the local registry (builds here are offline),
commits ``examples/`` to a local git repository, loads the sample data with that commit, asks
the running Celery worker to publish release 1.0.0 and follows it to ``published``, printing
progress and then the artifacts.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from releases.adapters.registry_client import registry_client
from releases.choices import ReleaseState
from releases.models import ReleaseVersion
from releases.sandbox.tiny_base import BaseImageMissing, push_multiarch_base_image
from releases.services import TransitionRefused, publish_release, retry_release

from .load_sample_data import SAMPLE_VERSION

EXAMPLES = Path(settings.BASE_DIR) / "examples"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


class Command(BaseCommand):
    help = "Publish the sample threek8s release (examples/) end to end and print its artifacts."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--source", default=str(Path(settings.BASE_DIR) / "var" / "sample-source"))
        parser.add_argument("--timeout", type=int, default=900, help="Seconds to wait for the release.")

    def handle(self, *args, source: str, timeout: int, **options) -> None:
        with registry_client() as client:
            try:
                base = push_multiarch_base_image(client)
            except BaseImageMissing as missing:
                raise CommandError(str(missing)) from missing
        self.stdout.write(f"base image {base.reference} ({', '.join(base.platforms)}) in the local registry")
        commit_sha = self.sample_repository(Path(source))
        call_command("load_sample_data", commit_sha=commit_sha, stdout=self.stdout)
        release = ReleaseVersion.objects.get(version=SAMPLE_VERSION)
        if release.commit_sha != commit_sha:
            raise CommandError(
                f"release {SAMPLE_VERSION} exists with commit {release.commit_sha[:12]}, not the sample's "
                f"{commit_sha[:12]}; remove var/ to start over"
            )
        if release.state == ReleaseState.PUBLISHED:
            self.stdout.write(
                self.style.SUCCESS(
                    f"release {release.version} is already published (at {release.published_at:%Y-%m-%d %H:%M} UTC); "
                    "serving it as it is. Remove var/ to publish the sample from scratch."
                )
            )
            self.print_artifacts(release)
            return
        try:
            if release.state == ReleaseState.DRAFT:
                publish_release(release.pk)
            elif release.state == ReleaseState.FAILED:
                retry_release(release.pk)
        except TransitionRefused as refused:
            raise CommandError("; ".join(refused.reasons)) from None
        release = self.follow(release.pk, timeout)
        if release.state != ReleaseState.PUBLISHED:
            raise CommandError(f"release {release.version} failed: {release.failure_reason}")
        self.stdout.write(self.style.SUCCESS(f"release {release.version} published"))
        self.print_artifacts(release)

    def print_artifacts(self, release: ReleaseVersion) -> None:
        signed = release.images().exclude(signed_with="").count()
        self.stdout.write(f"artifacts ({signed} of {release.images().count()} images signed):")
        for artifact in release.artifacts.order_by("type"):
            self.stdout.write(f"  {artifact.type:16} {artifact.uri}  ({artifact.size} bytes)")

    def sample_repository(self, repo: Path) -> str:
        """``examples/`` committed to a git repository (once); returns the commit SHA."""
        if not (repo / ".git").exists():
            shutil.rmtree(repo, ignore_errors=True)
            shutil.copytree(EXAMPLES, repo)
            git(repo, "init", "-q", "-b", "main")
            git(repo, "add", "-A")
            git(
                repo,
                "-c",
                "user.email=sample@localhost",
                "-c",
                "user.name=Release Please",
                "commit",
                "-q",
                "-m",
                f"chore(main): release {SAMPLE_VERSION}",
            )
        if f"file://{repo}" != settings.SOURCE_REPOSITORY_URL:
            raise CommandError(
                f"set SOURCE_REPOSITORY_URL=file://{repo} so the worker builds the sample (bin/run does)"
            )
        return git(repo, "rev-parse", "HEAD")

    def follow(self, release_pk: int, timeout: int) -> ReleaseVersion:
        """Print each change of the release's, images' and chart's progress until it ends."""
        deadline = time.monotonic() + timeout
        shown: dict[str, str] = {}
        while time.monotonic() < deadline:
            release = ReleaseVersion.objects.get(pk=release_pk)
            lines = {f"release {release.version}": release.state}
            for image in release.images():
                lines[image.name] = f"{image.state} {image.progress}".strip()
            for chart in release.charts():
                lines[f"chart {chart.name}"] = f"{chart.state} {chart.progress}".strip()
            for subject, status in lines.items():
                if shown.get(subject) != status:
                    self.stdout.write(f"  {subject:20} {status}")
                    shown[subject] = status
            if release.state in (ReleaseState.PUBLISHED, ReleaseState.FAILED):
                return release
            time.sleep(0.5)
        raise CommandError(f"release still {release.state} after {timeout}s; is the Celery worker running?")
