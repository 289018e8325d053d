"""Run one tag-immutability audit in the foreground, with progress and a summary.

Exit status 1 when findings are open after the run (so a cron job or CI step can alert on it).
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from releases.models import AuditFinding
from releases.services import AuditAlreadyRunning, audit_now


class Command(BaseCommand):
    help = "Check that every published tag still points at its recorded digest; exit 1 when findings are open."

    def handle(self, *args, **options) -> None:
        def progress(done: int, total: int) -> None:
            width = 30
            filled = width * done // max(total, done, 1)
            self.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{max(total, done)} tags", ending="")
            self.stdout.flush()

        try:
            run = audit_now(triggered_by="command", on_progress=progress)
        except AuditAlreadyRunning as error:
            raise CommandError(str(error)) from None
        self.stdout.write("")
        self.stdout.write(
            f"checked {run.tags_checked} tags in {(run.finished - run.started).total_seconds():.1f}s: "
            f"{run.new_findings} new finding(s), {run.resolved_findings} resolved"
        )
        open_findings = AuditFinding.objects.open().order_by("severity", "type")
        for finding in open_findings:
            style = self.style.ERROR if finding.severity == AuditFinding.Severity.CRITICAL else self.style.WARNING
            self.stdout.write(
                style(
                    f"  {finding.severity:8} {finding.type:24} {finding.artifact} "
                    f"expected {finding.expected or '-'} actual {finding.actual or '-'}"
                )
            )
        if open_findings.exists():
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS("every published tag points at its recorded digest"))
