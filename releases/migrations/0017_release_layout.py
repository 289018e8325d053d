"""Releases keep the layout they were planned with (``.release-registry.yaml``); images their component
and build args; charts their warnings and the values they were pinned with. The new columns are frozen
with published rows (``releases.database.triggers``); images planned before get their component from the
spec's names.

Reversible: migrating back to 0016 restores 0016's triggers.
"""

from django.db import migrations, models

from releases.database.triggers import freeze_layout_columns, lift_on_sqlite, restore_0016_triggers

SPEC_NAMES = {"threek8s-frontend": "frontend", "threek8s-backend": "backend"}


def components_of_planned_images(apps, schema_editor) -> None:
    DockerImage = apps.get_model("releases", "DockerImage")
    for name, component in SPEC_NAMES.items():
        DockerImage.objects.filter(name=name, component="").update(component=component)


class Migration(migrations.Migration):

    dependencies = [
        ('releases', '0016_chart_dependency_locks_and_index_metadata'),
    ]

    operations = [
        migrations.RunPython(lift_on_sqlite, lift_on_sqlite),
        migrations.AddField(
            model_name='dockerimage',
            name='build_args',
            field=models.JSONField(blank=True, default=dict, help_text='Build arguments of this image (over IMAGE_BUILD_ARGS).'),
        ),
        migrations.AddField(
            model_name='dockerimage',
            name='component',
            field=models.CharField(blank=True, choices=[('frontend', 'Frontend'), ('backend', 'Backend')], help_text="Which of the release's components this image is (its artifact type).", max_length=16),
        ),
        migrations.AddField(
            model_name='helmchart',
            name='image_pins',
            field=models.JSONField(blank=True, default=dict, help_text='Per component, the values the published chart was pinned with (registry, repository, tag@digest).'),
        ),
        migrations.AddField(
            model_name='helmchart',
            name='warnings',
            field=models.JSONField(blank=True, default=list, help_text='What validation noticed without refusing (images outside the namespace).'),
        ),
        migrations.AddField(
            model_name='releaseversion',
            name='layout',
            field=models.JSONField(blank=True, default=dict, editable=False, help_text='The effective .release-registry.yaml (defaults filled in) the release was planned with.'),
        ),
        migrations.RunPython(components_of_planned_images, migrations.RunPython.noop),
        migrations.RunPython(freeze_layout_columns, restore_0016_triggers),
    ]
