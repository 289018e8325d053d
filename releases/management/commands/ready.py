"""The readiness checks in the foreground, for a worker's probe (workers serve no HTTP).

``HEALTH_CHECK_ENGINE=true manage.py ready`` on a build worker also checks its Docker engine.
Prints each check's status and latency; exit 1 when one fails.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand

from releases.observability.health import readiness


class Command(BaseCommand):
    help = "Check PostgreSQL, the broker, the registry (and the engine with HEALTH_CHECK_ENGINE); exit 1 if not ready."

    def handle(self, *args, **options) -> None:
        ready, body = readiness()
        self.stdout.write(json.dumps(body, indent=2))
        if not ready:
            sys.exit(1)
