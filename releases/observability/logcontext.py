"""What every log line says besides its message: the Celery task it runs in and the release,
image, chart or audit it is about.

The pipelines set the subject (``with log_context(image=pk):``) in a context variable;
:class:`ContextFilter`, on every handler, adds it and the current Celery task's id to each record,
and :class:`JsonLinesFormatter` writes records as JSON lines for log shippers (``LOG_FORMAT=json``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from celery import current_task

#: The subjects a log line can be about, in the order they are shown.
SUBJECTS = ("release", "image", "chart", "audit_run")
#: What :class:`ContextFilter` adds to a line about no subject.
_NO_SUBJECT = {**{f"{name}_id": "-" for name in SUBJECTS}, "context": "-"}

_subject: ContextVar[dict[str, int | str]] = ContextVar("release_registry_log_subject", default={})  # noqa: B039


@contextmanager
def log_context(**ids: int | str | None) -> Iterator[None]:
    """Every line logged in the block names these (``release=``, ``image=``, ``chart=``, ``audit_run=``)."""
    unknown = set(ids) - set(SUBJECTS)
    if unknown:
        raise ValueError(f"log_context takes {', '.join(SUBJECTS)}, not {', '.join(sorted(unknown))}")
    token = _subject.set({**_subject.get(), **{key: value for key, value in ids.items() if value is not None}})
    try:
        yield
    finally:
        _subject.reset(token)


def current_subject() -> dict[str, int | str]:
    return dict(_subject.get())


class ContextFilter(logging.Filter):
    """Adds ``task_id``, ``task_name``, one attribute per subject (``-`` when unknown) and
    ``context`` (``release=3 image=7``, or ``-``) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = None
        try:
            task = current_task._get_current_object()
            request = task.request if task is not None else None
        except Exception:  # noqa: BLE001 - no task (web process) or a half-set-up one: no id
            request = None
        record.task_id = getattr(request, "id", None) or "-"
        record.task_name = (getattr(request, "task", None) or "-") if request is not None else "-"
        subject = _subject.get()
        if not subject:  # a web request's lines (the admission webhook logs every review)
            record.__dict__.update(_NO_SUBJECT)
            return True
        for name in SUBJECTS:
            setattr(record, f"{name}_id", subject.get(name, "-"))
        record.context = " ".join(f"{name}={subject[name]}" for name in SUBJECTS if name in subject) or "-"
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [task=%(task_id)s %(context)s] %(message)s"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601, ms), ``level``, ``logger``, ``message``,
    ``task_id``, ``task``, the subjects present (``release_id``, ``image_id``, ``chart_id``,
    ``audit_run_id``) and ``exception`` when there is one. Written here (a dozen lines) rather than
    with python-json-logger: the fields are fixed, and the scrubbing filter runs before it."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "task_id": getattr(record, "task_id", "-"),
            "task": getattr(record, "task_name", "-"),
        }
        for name in SUBJECTS:
            value = getattr(record, f"{name}_id", "-")
            if value != "-":
                line[f"{name}_id"] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)
