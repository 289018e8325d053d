"""Where each image repository's `latest` tag was put by a withdrawal or a restore (`LatestTag`)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('releases', '0021_release_withdrawals'),
    ]

    operations = [
        migrations.CreateModel(
            name='LatestTag',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('registry', models.CharField(max_length=255)),
                ('name', models.CharField(max_length=255)),
                ('state', models.CharField(choices=[('moving', 'Moving'), ('current', 'Current'), ('stranded', 'Stranded'), ('failed', 'Failed')], default='moving', max_length=16)),
                ('version', models.CharField(blank=True, help_text='The version latest points at (when current).', max_length=128)),
                ('digest', models.CharField(blank=True, max_length=71)),
                ('reason', models.TextField(blank=True)),
                ('attempts', models.PositiveIntegerField(default=0, help_text='Registry attempts of the last move.')),
                ('updated', models.DateTimeField(auto_now=True)),
            ],
            options={
                'ordering': ['registry', 'name'],
                'constraints': [models.UniqueConstraint(fields=('registry', 'name'), name='latest_tag_once_per_repository'), models.CheckConstraint(condition=models.Q(('state__in', ['moving', 'current', 'stranded', 'failed'])), name='latest_tag_state_known')],
            },
        ),
    ]
