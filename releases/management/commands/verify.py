"""``manage.py verify <reference>...``: a deploy job's gate.

Exit 0 only when every reference is ours, published, signed where signing is configured, and not
withdrawn; otherwise exit 1, having said why for each one. The same use case as
``GET /api/v1/verify/`` (``releases.trust.verify``); the database alone is asked, never the registry.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand

from releases.trust.verify import report, summary, verify_references


class Command(BaseCommand):
    help = (
        "Exit 0 only when every reference (a tag or digest of an image index, a platform manifest or the chart) "
        "is ours, published, signed where signing is configured and not withdrawn; print why otherwise."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("references", nargs="+", metavar="reference")
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="print the API's answer for each reference"
        )

    def handle(self, *args, references: list[str], as_json: bool = False, **options) -> None:
        results = verify_references(references)
        if as_json:
            self.stdout.write(json.dumps([report(result) for result in results], indent=2))
        else:
            for result in results:
                if result.verified:
                    self.stdout.write(self.style.SUCCESS(f"ok       {result.written}: {summary(result)}"))
                else:
                    self.stdout.write(self.style.ERROR(f"refused  {result.written}: {summary(result)}"))
        refused = sum(1 for result in results if not result.verified)
        if refused:
            self.stderr.write(f"{refused} of {len(results)} reference(s) refused")
            sys.exit(1)
