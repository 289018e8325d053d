"""Registries that ask clients to slow down (HTTP 429, or 503 with ``Retry-After``).

A registry that rate-limits says so for the client as a whole, not for one request: once it has
asked for a pause, every request to it waits (:class:`Throttle`, one per
:class:`~releases.oci.client.RegistryClient`, shared by its threads and by the audit's probes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: Answers that mean "slow down" when they carry ``Retry-After`` (429 means it even without).
THROTTLING_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP-date).

    ``None`` when the value is missing or unreadable; a date in the past means 0.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds == seconds else None  # refuses negatives and NaN
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Throttle:
    """The moment before which no request may be sent to one registry. Thread-safe.

    :meth:`hold` only ever moves that moment later, so concurrent 429s never shorten a pause.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._resume_at = 0.0
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        """Pause every request for ``seconds`` from now (unless a longer pause is already on)."""
        with self._lock:
            self._resume_at = max(self._resume_at, self._clock() + seconds)

    def remaining(self) -> float:
        """Seconds left before requests may be sent again (0.0 when none are held)."""
        return max(0.0, self._resume_at - self._clock())
