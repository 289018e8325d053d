"""Migration 0010 recomputes the sort keys that rows already have (and going back restores them)."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from releases.versions import column_sort_key

BEFORE = ("releases", "0010_registry_artifact_base")
AFTER = ("releases", "0011_collation_independent_version_keys")
old_sort_key = importlib.import_module("releases.migrations.0005_version_order_and_api_tokens").semver_sort_key
VERSIONS = ["1.0.0-alpha-1", "1.0.0", "1.0.0-alpha", "1.0.0-rc.1", "1.10.0", "1.9.0"]
ORDERED = ["1.0.0-alpha", "1.0.0-alpha-1", "1.0.0-rc.1", "1.0.0", "1.9.0", "1.10.0"]


def migrate(target: tuple[str, str] | None = None):
    """Migrate to ``target`` (default: the latest migrations); the apps of that state."""
    executor = MigrationExecutor(connection)
    targets = [target] if target else executor.loader.graph.leaf_nodes("releases")
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_0011_recomputes_the_keys_of_existing_rows_and_going_back_restores_them() -> None:
    try:
        # Given rows written by the code before 0011, with its keys
        apps = migrate(BEFORE)
        Release = apps.get_model("releases", "ReleaseVersion")
        Image = apps.get_model("releases", "DockerImage")
        Chart = apps.get_model("releases", "HelmChart")
        for version in VERSIONS:
            Release.objects.create(version=version, version_order=old_sort_key(version), commit_sha="a" * 40)
            Image.objects.create(name="threek8s-backend", tag=version, tag_order=old_sort_key(version))
            Chart.objects.create(chart_version=version, app_version=version, version_order=old_sort_key(version))
        Image.objects.create(name="threek8s-backend", tag="latest", tag_order=old_sort_key("latest"))

        # When 0011 runs
        after = migrate(AFTER)

        # Then every key is the collation-independent one, and the order is semver's (read with the
        # models of that state: later migrations add columns the schema has not got yet)
        for model, key, source in (
            (after.get_model("releases", "ReleaseVersion"), "version_order", "version"),
            (after.get_model("releases", "HelmChart"), "version_order", "chart_version"),
            (after.get_model("releases", "DockerImage"), "tag_order", "tag"),
        ):
            rows = list(model.objects.order_by(key).values_list(source, key))
            assert all(stored == column_sort_key(version) for version, stored in rows)
            assert [version for version, _ in rows if version != "latest"] == ORDERED
        assert after.get_model("releases", "DockerImage").objects.order_by("-tag_order").first().tag == "latest"

        # And going back restores the old keys
        migrate(BEFORE)
        assert all(
            stored == old_sort_key(version)
            for version, stored in Release.objects.values_list("version", "version_order")
        )
    finally:
        migrate()
