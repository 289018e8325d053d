"""The API's answers to refused work: 409 with every reason."""

from __future__ import annotations

from rest_framework import exceptions, status

from ..transitions import TransitionRefused


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "the request conflicts with the current state"
    default_code = "conflict"


def refused(error: TransitionRefused) -> Conflict:
    """A refused transition as a 409 listing every reason."""
    return Conflict({"detail": f"{error.transition_name} refused", "reasons": error.reasons})
