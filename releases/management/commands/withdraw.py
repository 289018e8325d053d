"""Withdraw a published release, or restore it (``--restore``), as the API and the admin do."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from releases.models import ReleaseVersion
from releases.trust.withdrawal import WithdrawalConflict, restore_release, withdraw_release


class Command(BaseCommand):
    help = (
        "Withdraw a published release (releases/latest/, index.yaml and each image's latest tag skip it; "
        "nothing published changes), or restore it with --restore. A reason is required."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("version")
        parser.add_argument("--reason", required=True, help="why; told to everyone who asks about the release")
        parser.add_argument("--restore", action="store_true", help="undo the withdrawal instead")
        parser.add_argument("--by", default="manage.py withdraw", help="who, as recorded (default: %(default)s)")

    def handle(self, *args, version: str, reason: str, restore: bool, by: str, **options) -> None:
        use_case = restore_release if restore else withdraw_release
        try:
            record = use_case(version, reason=reason, actor=by)
        except ReleaseVersion.DoesNotExist:
            raise CommandError(f"no release {version}") from None
        except ValidationError as invalid:
            raise CommandError("; ".join(invalid.messages)) from None
        except WithdrawalConflict as conflict:
            raise CommandError(str(conflict)) from None
        done = "restored" if restore else "withdrawn"
        self.stdout.write(
            self.style.SUCCESS(f"release {version} {done} (record #{record.sequence}); latest tags are being moved")
        )
