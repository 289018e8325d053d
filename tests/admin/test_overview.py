"""The admin's front page is the control room: recent releases with their artifacts' states, steps
and durations, open findings, the next audit, pictures; in a constant number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from releases.choices import ImageState
from releases.models import AuditRun
from releases.schedules import AUDIT_TASK_NAME
from tests.fixtures.factories import make_image, make_release, seed_release_history

pytestmark = pytest.mark.django_db

OVERVIEW_QUERIES = 20


@pytest.fixture
def staff_client(client):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(user)
    return client


def test_front_page_shows_recent_releases_with_artifact_states_steps_and_durations(staff_client):
    seed_release_history(3, findings=2)
    page = staff_client.get(reverse("admin:index")).content.decode()

    assert 'id="control-room"' in page and 'data-active="true"' in page  # the newest is building
    assert 'data-version="1.0.2"' in page and 'data-state="building"' in page
    assert "building linux/arm64" in page  # the image's current step
    assert 'data-version="1.0.0"' in page and 'data-state="published"' in page
    assert "took" not in page and "30.0 s" in page  # release 1.0.0: submit -> published in 30 s
    assert "1 critical, 1 warning" in page
    assert 'class="cr-picture cr-sizes"' in page and 'class="cr-picture cr-audits"' in page
    assert "//" not in "".join(part.split('"')[0] for part in page.split('src="')[1:])  # nothing remote


def test_front_page_answers_in_constant_queries_whatever_the_number_of_releases(staff_client):
    counts = []
    for first, count in ((0, 10), (10, 190)):  # 10 releases and findings, then 200
        seed_release_history(count, findings=count, first=first, start=timezone.now() - timedelta(days=1))
        with CaptureQueriesContext(connection) as queries:
            assert staff_client.get(reverse("admin:index")).status_code == 200
            assert staff_client.get(reverse("admin:overview_live")).status_code == 200
        counts.append(len(queries))
    assert 0 < counts[0] == counts[1] <= 2 * OVERVIEW_QUERIES, counts


def test_front_page_query_budget(staff_client, django_assert_max_num_queries):
    seed_release_history(200, findings=200)
    with django_assert_max_num_queries(OVERVIEW_QUERIES):
        staff_client.get(reverse("admin:index"))


def test_live_endpoint_re_renders_the_overview_and_says_whether_work_runs(staff_client):
    release = make_release("2.0.0")
    answer = staff_client.get(reverse("admin:overview_live")).json()
    assert answer["active"] is False and 'data-version="2.0.0"' in answer["html"]

    make_image("threek8s-frontend", "2.0.0", ImageState.BUILDING, progress="building linux/amd64")
    answer = staff_client.get(reverse("admin:overview_live")).json()
    assert answer["active"] is True and "building linux/amd64" in answer["html"]
    assert release.version in answer["html"]


def test_next_audit_is_the_last_run_plus_the_interval(staff_client):
    task = PeriodicTask.objects.get(name=AUDIT_TASK_NAME)
    task.interval = IntervalSchedule.objects.create(every=15, period=IntervalSchedule.MINUTES)
    task.last_run_at = timezone.now() - timedelta(minutes=5)
    task.save()
    AuditRun.objects.create(tags_checked=42, status=AuditRun.Status.SUCCEEDED)
    due = timezone.localtime(task.last_run_at + timedelta(minutes=15))

    page = staff_client.get(reverse("admin:index")).content.decode()
    assert f"{due:%Y-%m-%d %H:%M} (in 9 min" in page or f"{due:%Y-%m-%d %H:%M} (in 10 min" in page
    assert "succeeded, 42 tags" in page


def test_next_audit_says_when_never_run_or_disabled(staff_client):
    PeriodicTask.objects.filter(name=AUDIT_TASK_NAME).update(last_run_at=None)
    assert "at the next beat tick" in staff_client.get(reverse("admin:index")).content.decode()
    PeriodicTask.objects.filter(name=AUDIT_TASK_NAME).update(enabled=False)
    assert "disabled in the beat schedule" in staff_client.get(reverse("admin:index")).content.decode()


def test_staff_without_release_permissions_sees_no_overview(client):
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(user)
    make_release("2.0.0")
    page = client.get(reverse("admin:index")).content.decode()
    assert "control-room" not in page and "2.0.0" not in page
    assert client.get(reverse("admin:overview_live")).status_code == 403

    user.user_permissions.add(Permission.objects.get(codename="view_releaseversion"))
    client.force_login(User.objects.get(pk=user.pk))
    assert 'data-version="2.0.0"' in client.get(reverse("admin:index")).content.decode()
