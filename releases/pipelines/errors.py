"""How a pipeline step says it cannot go on."""

from __future__ import annotations

import errno

from celery.exceptions import SoftTimeLimitExceeded

#: What a full disk says: the errno of Python's OSError, or the words a child process (git, tar) prints.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_WORDS = ("No space left on device", "Disk quota exceeded")


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


def _causes(error: BaseException):
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        current = current.__cause__ or current.__context__


def disk_full(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a full disk or an exhausted quota, raised by Python
    (``OSError`` ENOSPC/EDQUOT) or reported by a child process such as git."""
    return any(
        (isinstance(cause, OSError) and cause.errno in DISK_FULL_ERRNOS)
        or any(words in str(cause) for words in DISK_FULL_WORDS)
        for cause in _causes(error)
    )


def disk_full_reason(error: BaseException) -> str:
    """The failure reason of work stopped by a full build directory: which setting names the disk,
    and what to do. Not a bug, and not transient: someone has to free space."""
    return (
        f"the build directory (BUILD_WORKDIR) is out of space: {error}. Free space on that disk (or point "
        "BUILD_WORKDIR at a bigger one), then retry"
    )


def refusal_reason(error: BaseException) -> str:
    """The reason a refused step gives a person: a full build directory says so; any other
    ``OSError`` is not the step's to explain and is raised again, for the task to name as unexpected."""
    if disk_full(error):
        return disk_full_reason(error)
    if isinstance(error, OSError):
        raise error
    return str(error)
