"""What a pipeline is doing now, logged and shown on the row (the admin's list, the API)."""

from __future__ import annotations

import logging

from django.db import models

from ..transitions import public_text

logger = logging.getLogger(__name__)


def report_progress(model: type[models.Model], pk: int, message: str) -> None:
    """Log what a pipeline is doing and show it in the row's ``progress``."""
    message = public_text(message)
    logger.info("%s %s: %s", model._meta.model_name, pk, message)
    model.objects.filter(pk=pk).update(progress=message[:255])
