"""How a pipeline step says it cannot go on."""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded


class PipelineError(Exception):
    """A failure a person must act on; its message becomes the row's failure reason."""


class PipelineBusy(Exception):
    """Another worker holds this row's pipeline (e.g. a redelivered copy of a task still running).

    The task retries later instead of returning: if that other worker dies, the work still continues.
    """


def time_limit_cause(error: BaseException) -> SoftTimeLimitExceeded | None:
    """The soft time limit behind ``error``, if a step wrapped it (``raise PipelineError(...) from``)
    or a clean-up raised while it unwound; ``None`` when the time limit played no part."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, SoftTimeLimitExceeded):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def reraise_time_limit(error: BaseException) -> None:
    """Let a soft time limit that a step wrapped reach the task, which names the limit in the reason."""
    limit = time_limit_cause(error)
    if limit is not None:
        raise limit from error
