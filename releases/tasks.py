"""Celery tasks. They take primary keys, are safe to run twice, and retry only transient errors."""

from __future__ import annotations

from celery import shared_task

from .image_pipeline import fail_image, run_image_pipeline
from .imagebuild import EngineUnavailable
from .oci import RegistryUnavailable

TRANSIENT_ERRORS = (EngineUnavailable, RegistryUnavailable)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def build_image(self, image_pk: int) -> str:
    """Take a ``DockerImage`` from where its state says to ``available`` (or ``failed``).

    Retries the engine or registry being unreachable, with backoff, ``max_retries`` times; then
    the image fails saying which service was unreachable and what to check.
    """
    task = f"build_image[{self.request.id}]"
    try:
        return run_image_pipeline(image_pk, task=task)
    except TRANSIENT_ERRORS as error:
        if self.request.retries >= self.max_retries:
            fail_image(image_pk, f"{error} (gave up after {self.max_retries} retries)", task=task)
            return "failed"
        raise self.retry(exc=error, countdown=min(2**self.request.retries * 5, 60)) from error
