"""manage.py reproduce: a published release is rebuilt without cache and compared, per platform."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from django.core.management import call_command

from releases.choices import ImageState
from releases.tasks import build_image
from tests.pipeline.test_image_pipeline import pipeline, queue_image  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def _publish(pipeline, run: str) -> None:  # noqa: F811
    sha = pipeline.commit(
        {
            "backend/Dockerfile": f"FROM {pipeline.base_image}\nCOPY app.txt /app/app.txt\n{run}USER 1000\n",
            # content of its own: no step is served by another test's build cache (a cached layer
            # from an earlier commit keeps that build's older timestamps; see README)
            "backend/app.txt": f"app {uuid.uuid4()}\n",
        }
    )
    image = queue_image(sha)
    assert build_image.apply(args=[image.pk]).get() == ImageState.AVAILABLE
    image.refresh_from_db()
    assert image.labels["org.opencontainers.image.created"].endswith("Z")


def test_a_deterministic_release_reproduces_on_every_platform(pipeline):  # noqa: F811
    # Given a published release whose RUN steps write the same bytes every time
    _publish(pipeline, "RUN echo built > /built && mkdir /data\n")

    # When it is rebuilt without the engine's cache
    out = io.StringIO()
    call_command("reproduce", "1.0.0", stdout=out)

    # Then each platform's digest is the published one
    lines = out.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "threek8s-backend:1.0.0 linux/amd64: reproduces",
        "threek8s-backend:1.0.0 linux/arm64: reproduces",
    ]


def test_a_step_writing_the_time_does_not_reproduce_and_the_command_says_where(pipeline):  # noqa: F811
    _publish(pipeline, "RUN date +%s%N > /now\n")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_status:
        call_command("reproduce", "1.0.0", stdout=out)
    assert exit_status.value.code == 1
    for line in out.getvalue().splitlines():
        assert ": differs (published sha256:" in line
        assert len(re.findall(r"layer \d+ differs", line)) == 1, "only the RUN's layer differs"
        assert "config differs" not in line


def test_a_version_with_no_available_image_is_refused(pipeline):  # noqa: F811
    from django.core.management.base import CommandError

    from tests.fixtures.factories import make_release

    make_release("2.0.0", commit_sha="a" * 40)
    with pytest.raises(CommandError, match="release 2.0.0 has no available image to rebuild"):
        call_command("reproduce", "2.0.0")
