"""Rebuild a published release and say, per image and platform, whether it reproduces.

Exit status 1 when any platform image differs from what was published.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from releases.pipelines.errors import PipelineError
from releases.pipelines.reproduce import reproduce_release


class Command(BaseCommand):
    help = "Rebuild a published release without cache and compare each platform's digest with the published one."

    def add_arguments(self, parser) -> None:
        parser.add_argument("version", help="the release version, e.g. 1.4.0")

    def handle(self, *args, version: str, **options) -> None:
        try:
            results = reproduce_release(version, on_line=lambda line: None)
        except PipelineError as error:
            raise CommandError(str(error)) from None
        for result in results:
            for comparison in result.comparisons:
                style = self.style.SUCCESS if comparison.reproduces else self.style.ERROR
                self.stdout.write(style(f"{result.image} {comparison}"))
        if not all(result.reproduces for result in results):
            sys.exit(1)
