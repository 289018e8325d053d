"""What a pipeline is doing now, logged and shown on the row (the admin's list, the API)."""

from __future__ import annotations

import logging

from django.db import models

from ..transitions import mark_progress, public_text

logger = logging.getLogger(__name__)


def report_progress(model: type[models.Model], pk: int, message: str) -> None:
    """Log what a pipeline is doing and show it in the row's ``progress`` (and tell the sweeper it moved)."""
    message = public_text(message)
    logger.info("%s %s: %s", model._meta.model_name, pk, message)
    mark_progress(model, pk, progress=message[:255])


def stage_of(model: type[models.Model], pk: int) -> str:
    """Where a row's pipeline is, for a failure reason: ``pushing (pushing linux/arm64)``."""
    row = model.objects.filter(pk=pk).values("state", "progress").first()
    if row is None:
        return "gone"
    return f"{row['state']} ({row['progress']})" if row["progress"] else row["state"]
