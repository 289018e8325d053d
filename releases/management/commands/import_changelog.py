"""Import an existing Release Please CHANGELOG.md (and its manifest) into release records."""

from __future__ import annotations

import subprocess
from datetime import datetime, time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from releases import services
from releases.changelog import read_manifest, split_changelog
from releases.models import ReleaseVersion


class Command(BaseCommand):
    help = (
        "Import the releases of a Release Please CHANGELOG.md as draft releases. Each release's commit is "
        "the one its git tag points at (--tag-format), read from --repository; its pr_number is the pull "
        "request that commit's subject names (Release Please's 'chore(main): release 1.4.0 (#43)')."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("changelog", help="Path of CHANGELOG.md")
        parser.add_argument("--repository", required=True, help="A local clone holding the release tags")
        parser.add_argument("--manifest", help="Path of .release-please-manifest.json, checked against the changelog")
        parser.add_argument("--package", default=".", help="The manifest's package path (default '.')")
        parser.add_argument(
            "--tag-format", default="v{version}", help="How release tags are named (default v{version})"
        )

    def handle(
        self, *args, changelog: str, repository: str, manifest: str | None, package: str, tag_format: str, **options
    ) -> None:
        try:
            releases = [r for r in split_changelog(Path(changelog).read_text()) if r.version]
        except OSError as error:
            raise CommandError(f"cannot read {changelog}: {error}") from None
        if not releases:
            raise CommandError(f"{changelog} has no release headings such as '## [1.4.0](...) (2026-11-20)'")
        if manifest:
            self.check_manifest(manifest, package, releases[0].version)
        imported, with_pr, existing, problems = 0, 0, 0, []
        for number, notes in enumerate(reversed(releases), 1):
            self.progress(number, len(releases), notes.version)
            if ReleaseVersion.objects.filter(version=notes.version).exists():
                existing += 1
                continue
            tag = tag_format.format(version=notes.version)
            commit_sha = self.commit_of(repository, tag)
            if commit_sha is None:
                problems.append(
                    f"{notes.version}: tag {tag} is not in {repository}; fetch the tags or fix --tag-format"
                )
                continue
            try:
                release = services.create_release(
                    version=notes.version,
                    commit_sha=commit_sha,
                    source_repository=repository,
                    changelog=notes.markdown.strip() + "\n",
                    release_date=timezone.make_aware(datetime.combine(notes.date, time()))
                    if notes.date
                    else timezone.now(),
                )
            except ValidationError as error:
                problems.append(f"{notes.version}: {'; '.join(error.messages)}")
                continue
            except services.ReleaseExists:
                existing += 1
                continue
            imported += 1
            with_pr += release.pr_number is not None
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"imported {imported} release(s), {with_pr} with the pull request their commit names; "
                f"{existing} already present"
            )
        )
        for problem in problems:
            self.stderr.write(f"  not imported: {problem}")
        if problems:
            raise CommandError(f"{len(problems)} release(s) could not be imported")

    def progress(self, done: int, total: int, label: str) -> None:
        width = 30
        filled = width * done // total
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<20}"
        self.stdout.write(line, ending="")
        self.stdout.flush()

    def check_manifest(self, path: str, package: str, newest: str) -> None:
        try:
            versions = read_manifest(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise CommandError(f"cannot read the manifest {path}: {error}") from None
        if package not in versions:
            raise CommandError(f"the manifest has no package {package!r}; it has {', '.join(versions) or 'none'}")
        if versions[package] != newest:
            raise CommandError(
                f"the manifest says {package} is at {versions[package]} but the changelog's newest release is "
                f"{newest}; import the changelog of the same commit"
            )

    @staticmethod
    def commit_of(repository: str, tag: str) -> str | None:
        result = subprocess.run(
            ["git", "-C", repository, "rev-list", "-n", "1", f"refs/tags/{tag}"], capture_output=True, text=True
        )
        return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None
