"""Bump the data generations that rendered-page caches key on, inside the writing transaction."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import DataGeneration, HelmChart, ReleaseArtifact, ReleaseVersion, ReleaseWithdrawal


@receiver([post_save, post_delete], sender=ReleaseVersion)
@receiver([post_save, post_delete], sender=ReleaseArtifact)
def releases_changed(sender, **kwargs) -> None:
    DataGeneration.bump(DataGeneration.RELEASES)


@receiver([post_save, post_delete], sender=HelmChart)
def charts_changed(sender, **kwargs) -> None:
    DataGeneration.bump(DataGeneration.CHARTS)


@receiver(post_save, sender=ReleaseWithdrawal)
def release_withdrawn_or_restored(sender, **kwargs) -> None:
    """A withdrawal changes what the release lists, ``releases/latest/`` and ``index.yaml`` say."""
    DataGeneration.bump(DataGeneration.RELEASES)
    DataGeneration.bump(DataGeneration.CHARTS)
