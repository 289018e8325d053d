"""The admin as a control room, in a real browser (Debian's chromium through Playwright) against a
live server, with a real Celery worker process, dockerd, docker-registry and helm: a person creates a
draft, publishes it, watches the overview follow the work without reloading, fixes a failed build,
retries and sees the release published with its timeline; a view-only user can do none of it.

Screenshots of the overview, a release page and an image page are written to ``var/screenshots/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User

from releases.choices import ImageState, ReleaseState
from releases.models import DockerImage, ReleaseVersion
from tests.e2e.test_release_flow import CHANGELOG, sample_source, service  # noqa: F401  (the fixtures)
from tests.fixtures.services import service_missing

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
WORK_TIMEOUT_MS = 600_000


@pytest.fixture
def browser(monkeypatch):
    """Headless chromium from Debian; Playwright never downloads a browser here."""
    from playwright import sync_api  # pinned in requirements/dev.txt: an import error is a broken install

    if not Path(CHROMIUM).exists():
        service_missing(f"{CHROMIUM} is missing (apt-get install chromium; bin/setup does it)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


def log_in(browser, base_url: str, username: str):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=base_url).new_page()
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    return page


def release_state_on_overview(page, version: str):
    return page.locator(f'#control-room tr[data-version="{version}"] [data-state]')


def test_a_person_publishes_fixes_and_retries_a_release_from_the_admin(service, sample_source, browser, live_server):  # noqa: F811
    from playwright.sync_api import expect

    _, commit_sha = sample_source
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_releaseversion", "view_dockerimage", "view_helmchart"])
    )
    # The frontend's Dockerfile path is wrong: its build will fail (planned ahead, like a bad config)
    DockerImage.objects.create(name="threek8s-frontend", tag="1.4.0", dockerfile_path="Dockerfile.missing")
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)

    # Given a person logged in, who creates a draft release in the admin
    page = log_in(browser, live_server.url, "admin")
    page.goto("/admin/releases/releaseversion/add/")
    page.fill("#id_version", "1.4.0")
    page.fill("#id_commit_sha", commit_sha)
    page.fill("#id_pr_number", "15")
    page.fill("#id_changelog", CHANGELOG)
    page.click("input[name=_continue]")
    expect(page.locator("#live-panel [data-role=state]")).to_have_text("draft")
    release = ReleaseVersion.objects.get(version="1.4.0")

    # When they click Publish and go to the overview
    page.click('button[name=_fsm_transition_to][value="submit"]')
    expect(page.locator(".messagelist")).to_contain_text("submit done", ignore_case=True)
    page.goto("/admin/")
    page.evaluate("window.__sameDocument = true")
    expect(release_state_on_overview(page, "1.4.0")).to_have_text("building", timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "overview-building.png"), full_page=True)

    # Then the overview follows the work without a reload, until the frontend's build fails it
    expect(release_state_on_overview(page, "1.4.0")).to_have_text("failed", timeout=WORK_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator('#control-room tr[data-version="1.4.0"] .cr-failure')).to_contain_text("Dockerfile.missing")

    # When they open the failed image, see why, fix its Dockerfile path and retry the release
    frontend = DockerImage.objects.get(name="threek8s-frontend", tag="1.4.0")
    page.goto(f"/admin/releases/dockerimage/{frontend.pk}/change/")
    expect(page.locator("#live-panel [data-role=failure]")).to_contain_text("Dockerfile.missing")
    page.screenshot(path=str(SCREENSHOTS / "image-failed.png"), full_page=True)
    page.fill("#id_dockerfile_path", "Dockerfile")
    page.click("input[name=_save]")
    page.goto(f"/admin/releases/releaseversion/{release.pk}/change/")
    page.click('button[name=_fsm_transition_to][value="retry"]')
    expect(page.locator(".messagelist")).to_contain_text("retry done", ignore_case=True)

    # Then the overview shows it published, again without a reload
    page.goto("/admin/")
    page.evaluate("window.__sameDocument = true")
    expect(release_state_on_overview(page, "1.4.0")).to_have_text("published", timeout=WORK_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument") is True
    assert ReleaseVersion.objects.get(pk=release.pk).state == ReleaseState.PUBLISHED
    page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)

    # And the release page draws the timeline: one bar per stage of each image and of the chart
    page.goto(f"/admin/releases/releaseversion/{release.pk}/change/")
    timeline = page.locator("#live-panel svg.cr-timeline")
    expect(timeline).to_be_visible()

    def stages(lane: str) -> list[str]:
        return timeline.locator(f'g.cr-bar[data-lane="{lane}"]').evaluate_all(
            "bars => bars.map(bar => bar.dataset.stage)"
        )

    assert stages("threek8s-backend") == ["queued", "building", "scanning", "pushing"]  # built once
    assert stages("threek8s-frontend") == ["queued", "building", "queued", "building", "scanning", "pushing"]
    assert stages("chart threek8s") == ["validating", "packaging", "uploading"]
    assert stages("release 1.4.0") == ["pending", "building", "pending", "building", "publishing"]
    # A published release offers nothing that could change it
    assert (
        page.locator("input[name=_save], input[name=_continue], .deletelink, button[name=_fsm_transition_to]").count()
        == 0
    )
    page.screenshot(path=str(SCREENSHOTS / "release.png"), full_page=True)
    timeline.screenshot(path=str(SCREENSHOTS / "release-timeline.png"))

    backend = DockerImage.objects.get(name="threek8s-backend", tag="1.4.0")
    assert backend.state == ImageState.AVAILABLE
    page.goto(f"/admin/releases/dockerimage/{backend.pk}/change/")
    expect(page.locator("table.cr-platforms button[data-copy]").first).to_be_visible()
    assert page.locator("table.cr-platforms tbody tr").count() == 3  # the index, amd64, arm64
    page.screenshot(path=str(SCREENSHOTS / "image.png"), full_page=True)

    # A view-only staff user sees the same pages without a single action, and a forged POST is refused
    draft = ReleaseVersion.objects.create(version="1.5.0", commit_sha=commit_sha)
    viewer_page = log_in(browser, live_server.url, "viewer")
    for url in (
        f"/admin/releases/releaseversion/{draft.pk}/change/",
        f"/admin/releases/dockerimage/{frontend.pk}/change/",
    ):
        viewer_page.goto(url)
        expect(viewer_page.locator("#live-panel")).to_be_visible()
        assert viewer_page.locator("button[name=_fsm_transition_to], input[name=_save]").count() == 0
    token = next(c["value"] for c in viewer_page.context.cookies() if c["name"] == "csrftoken")
    forged = viewer_page.request.post(
        f"/admin/releases/releaseversion/{draft.pk}/change/",
        form={"csrfmiddlewaretoken": token, "_fsm_transition_to": "submit", "version": "1.5.0"},
        headers={"Referer": f"{live_server.url}/admin/releases/releaseversion/{draft.pk}/change/"},
    )
    assert forged.status == 403
    assert ReleaseVersion.objects.get(pk=draft.pk).state == ReleaseState.DRAFT
