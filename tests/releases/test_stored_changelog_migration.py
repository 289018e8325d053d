"""Migration 0012 fills the stored forms (parsed sections, sanitized HTML) of releases that exist
before it, so no read has to parse their markdown."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from releases.changelog import parse_release_notes, render_html

BEFORE = [("releases", "0011_collation_independent_version_keys")]
AFTER = [("releases", "0012_stored_changelog")]
NOTES = "## [2.0.0](https://github.com/o/r/compare/v1.0.0...v2.0.0) (2026-11-20)\n\n### Features\n\n* **api:** ranges\n"


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor


@pytest.mark.django_db(transaction=True)
def test_migration_fills_stored_forms_of_existing_releases():
    try:
        # Given releases written before the stored forms existed
        old_apps = migrate(BEFORE).loader.project_state(BEFORE).apps
        OldRelease = old_apps.get_model("releases", "ReleaseVersion")
        for version, fields in (("1.0.0", {"release_notes": "* only notes\n"}), ("2.0.0", {"changelog": NOTES})):
            OldRelease.objects.create(version=version, version_order=version, commit_sha="a" * 40, **fields)

        # When migrating
        new_apps = migrate(AFTER).loader.project_state(AFTER).apps

        # Then each has the sections and HTML of its notes
        NewRelease = new_apps.get_model("releases", "ReleaseVersion")
        notes_only, with_changelog = NewRelease.objects.order_by("version")
        assert with_changelog.parsed_changelog == {
            "component": None,
            "sections": parse_release_notes(NOTES).to_dict()["sections"],
        }
        assert with_changelog.changelog_html == render_html(NOTES)
        assert notes_only.changelog_html == render_html("* only notes\n")
        assert notes_only.parsed_changelog["sections"][0]["entries"][0]["description"] == "only notes"
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
