"""Every log line names its time, level, logger, Celery task and subject; JSON lines on request;
secrets scrubbed on every handler; chatty libraries quiet unless LOG_LEVEL=DEBUG."""

from __future__ import annotations

import copy
import io
import json
import logging
import logging.config
import os
import subprocess
import sys

import pytest
from celery import shared_task
from django.conf import settings

from releases.observability.logcontext import log_context
from tests.fixtures.celery_worker import ROOT

logger = logging.getLogger("releases.tests.logging")


@shared_task(bind=True)
def log_inside_a_task(self) -> str:
    with log_context(release=3, image=7):
        logger.warning("pushing with %s", settings.SECRET_KEY)
    return self.request.id


@pytest.fixture
def configured(settings):
    """The settings' LOGGING, writing to a buffer; ``configured(fmt)`` returns the buffer."""
    buffers = []

    def configure(fmt: str) -> io.StringIO:
        stream = io.StringIO()
        config = copy.deepcopy(settings.LOGGING)
        config["handlers"]["console"]["stream"] = stream
        config["handlers"]["console"]["formatter"] = fmt
        logging.config.dictConfig(config)
        buffers.append(stream)
        return stream

    settings.SECRET_KEY = "s3cr3t-signing-key-for-logs"
    settings.LOGGING["filters"]["scrub"]["secrets"] = (settings.SECRET_KEY,)
    yield configure
    logging.config.dictConfig(settings.LOGGING)


def test_text_lines_name_the_task_and_the_subject_and_are_scrubbed(configured):
    stream = configured("text")

    task_id = log_inside_a_task.apply().get()
    logger.warning("outside any task")

    inside, outside = [line for line in stream.getvalue().splitlines() if "releases.tests.logging" in line]
    assert f"WARNING releases.tests.logging [task={task_id} release=3 image=7] pushing with [redacted]" in inside
    assert inside[:4].isdigit()  # the time comes first
    assert "s3cr3t" not in inside
    assert outside.endswith("WARNING releases.tests.logging [task=- -] outside any task")


def test_json_lines_for_log_shippers(configured):
    stream = configured("json")

    task_id = log_inside_a_task.apply().get()
    try:
        raise ValueError("with s3cr3t-signing-key-for-logs inside")
    except ValueError:
        logger.exception("failed")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    first, second = [line for line in lines if line["logger"] == "releases.tests.logging"]
    assert set(first) == {"time", "level", "logger", "message", "task_id", "task", "release_id", "image_id"}
    assert (first["level"], first["logger"], first["task_id"]) == ("WARNING", "releases.tests.logging", task_id)
    assert (first["release_id"], first["image_id"]) == (3, 7)
    assert first["message"] == "pushing with [redacted]"
    assert first["time"].endswith("+00:00")
    assert "ValueError: with [redacted] inside" in second["exception"]


def test_chatty_libraries_are_quiet_unless_debugging():
    assert {
        settings.LOGGING["loggers"][name]["level"] for name in ("httpx", "httpcore", "urllib3", "docker", "kombu")
    } == {"WARNING"}
    env = {**os.environ, "LOG_LEVEL": "debug"}
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.LOG_LEVEL, s.LOGGING['loggers']['httpx']['level'], s.LOGGING['root']['level'])",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "registry.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.split() == ["DEBUG", "DEBUG", "DEBUG"]


def test_every_handler_scrubs_and_adds_the_context():
    for handler in settings.LOGGING["handlers"].values():
        assert handler["filters"] == ["context", "scrub"]
