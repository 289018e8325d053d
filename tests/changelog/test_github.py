"""releases.github.events: webhook signatures and release events."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
from typing import Any

import pytest

from releases.github.events import (
    ReleaseEvent,
    compute_signature,
    parse_release_event,
    release_from_event,
    verify_signature,
)
from tests.changelog import R
from tests.changelog.test_parser import RELEASE_1_4_0

SECRET = "It's a Secret to Everybody"
# GitHub's documented example: https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
GITHUB_EXAMPLE_BODY = b"Hello, World!"
GITHUB_EXAMPLE_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

BODY = json.dumps({"action": "published", "release": {"tag_name": "v1.4.0"}}).encode()
GOOD = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


def test_githubs_documented_example() -> None:
    assert compute_signature(SECRET, GITHUB_EXAMPLE_BODY) == GITHUB_EXAMPLE_SIGNATURE
    assert verify_signature(SECRET, GITHUB_EXAMPLE_BODY, GITHUB_EXAMPLE_SIGNATURE)


@pytest.mark.parametrize(
    ("secret", "body", "header", "valid"),
    [
        pytest.param(SECRET, BODY, GOOD, True, id="valid"),
        pytest.param(SECRET, bytearray(BODY), GOOD, True, id="valid-bytearray"),
        pytest.param(SECRET, memoryview(BODY), GOOD, True, id="valid-memoryview"),
        pytest.param(SECRET, BODY, GOOD.upper().replace("SHA256=", "sha256="), True, id="uppercase-hex"),
        pytest.param(SECRET, BODY, f"  {GOOD}\n", True, id="surrounding-whitespace"),
        pytest.param("wrong secret", BODY, GOOD, False, id="wrong-secret"),
        pytest.param(SECRET, BODY + b" ", GOOD, False, id="tampered-body-appended"),
        pytest.param(SECRET, BODY.replace(b"v1.4.0", b"v9.9.9"), GOOD, False, id="tampered-body-changed"),
        pytest.param(SECRET, BODY, None, False, id="missing-header"),
        pytest.param(SECRET, BODY, "", False, id="empty-header"),
        pytest.param(
            SECRET, BODY, "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest(), False, id="sha1-prefix"
        ),
        pytest.param(SECRET, BODY, GOOD.removeprefix("sha256="), False, id="no-prefix"),
        pytest.param(SECRET, BODY, GOOD.replace("sha256=", "SHA256="), False, id="uppercase-prefix"),
        pytest.param(SECRET, BODY, "sha256=", False, id="prefix-only"),
        pytest.param(SECRET, BODY, GOOD[:-1], False, id="truncated"),
        pytest.param(SECRET, BODY, GOOD + "0", False, id="too-long"),
        pytest.param(SECRET, BODY, GOOD[:-1] + "g", False, id="non-hex"),
        pytest.param(SECRET, BODY, GOOD[:-1] + "é", False, id="non-ascii"),
        pytest.param(SECRET, BODY, f"{GOOD},{GOOD}", False, id="two-signatures"),
        pytest.param("", BODY, "sha256=" + hmac.new(b"", BODY, hashlib.sha256).hexdigest(), False, id="empty-secret"),
        pytest.param(None, BODY, GOOD, False, id="no-secret"),
        pytest.param(SECRET, BODY, 12345, False, id="header-not-a-string"),
    ],
)
def test_verify_signature(secret: Any, body: bytes, header: Any, valid: bool) -> None:
    assert verify_signature(secret, body, header) is valid


def test_verify_signature_wants_raw_bytes() -> None:
    with pytest.raises(TypeError, match="raw request bytes"):
        verify_signature(SECRET, BODY.decode(), GOOD)  # type: ignore[arg-type]


def test_verify_signature_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert verify_signature(SECRET, BODY, GOOD)
    assert not verify_signature(SECRET, BODY, GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1"))
    assert len(calls) == 2


# ----------------------------------------------------------------------------------------- release events

SHA = "0123456789abcdef0123456789abcdef01234567"


def payload(**release: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "action": "published",
        "release": {
            "id": 181818,
            "tag_name": "v1.4.0",
            "target_commitish": SHA,
            "name": "v1.4.0",
            "body": RELEASE_1_4_0,
            "draft": False,
            "prerelease": False,
            "html_url": f"{R}/releases/tag/v1.4.0",
        },
        "repository": {"full_name": "stianfro/threek8s"},
    }
    action = release.pop("action", None)
    if action is not None:
        base["action"] = action
    base["release"].update(release)
    return base


def test_published_release() -> None:
    event = release_from_event(payload())
    assert event == ReleaseEvent(
        version="1.4.0",
        commit_sha=SHA,
        notes_markdown=RELEASE_1_4_0,
        pr_number=None,  # the notes never mention the release PR
        action="published",
        tag_name="v1.4.0",
        component=None,
        prerelease=False,
        repository="stianfro/threek8s",
        release_id=181818,
    )
    notes = event.notes()
    assert notes.version == "1.4.0"
    assert len(notes.sections) == 3


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"action": "created"}, {"action": "created"}),
        ({"action": "released"}, {"action": "released"}),
        ({"tag_name": "1.4.0"}, {"tag_name": "1.4.0"}),
        ({"tag_name": "threek8s-v1.4.0"}, {"component": "threek8s", "tag_name": "threek8s-v1.4.0"}),
        ({"tag_name": "my-app-v1.4.0"}, {"component": "my-app", "tag_name": "my-app-v1.4.0"}),
        ({"tag_name": "frontend/v1.4.0"}, {"component": "frontend", "tag_name": "frontend/v1.4.0"}),
        ({"tag_name": "frontend-1.4.0"}, {"component": "frontend", "tag_name": "frontend-1.4.0"}),
        (
            {"tag_name": "v1.5.0-rc.1", "prerelease": True},
            {"version": "1.5.0-rc.1", "prerelease": True, "tag_name": "v1.5.0-rc.1"},
        ),
        ({"target_commitish": "main"}, {"commit_sha": None}),  # a branch says nothing about the commit
        ({"target_commitish": "release-please--branches--main"}, {"commit_sha": None}),
        ({"target_commitish": SHA.upper()}, {"commit_sha": SHA}),
        ({"target_commitish": SHA[:12]}, {"commit_sha": None}),  # abbreviated: not trusted
        ({"target_commitish": "a" * 64}, {"commit_sha": "a" * 64}),  # SHA-256 repositories
        ({"target_commitish": None}, {"commit_sha": None}),
        ({"body": None}, {"notes_markdown": ""}),
        ({"body": "a\r\nb"}, {"notes_markdown": "a\nb"}),
        ({"id": "181818"}, {"release_id": None}),
    ],
)
def test_release_event_fields(changes: dict[str, Any], expected: dict[str, Any]) -> None:
    event = release_from_event(payload(**changes))
    assert event is not None
    base = release_from_event(payload())
    assert base is not None
    wanted = {**base.__dict__, **expected}
    if "body" in changes:
        wanted["pr_number"] = None
    assert event.__dict__ == wanted


@pytest.mark.parametrize(
    ("body", "pr"),
    [
        (
            f"{RELEASE_1_4_0}\n### Miscellaneous Chores\n\n"
            f"* release 1.4.0 ([#90]({R}/issues/90)) ([abc1234]({R}/commit/abc1234))\n",
            90,
        ),
        ("chore(main): release 1.4.0 (#91)", 91),
        (f"* **main:** release threek8s 1.4.0 ([#92]({R}/issues/92))", 92),
        (f"Release v1.4.0 via {R}/pull/93", 93),
        ("* release 1.4.1 (#94)", None),  # another version
        ("* release 11.4.0 (#95)", None),
        ("* release 1.4.0-rc.1 (#96)", None),
        ("* (#97) release 1.4.0", None),  # the PR must come after the version
        (f"* released the kraken ([#98]({R}/issues/98))", None),
        ("", None),
    ],
)
def test_release_pr_number_from_notes(body: str, pr: int | None) -> None:
    event = release_from_event(payload(body=body))
    assert event is not None
    assert event.pr_number == pr


@pytest.mark.parametrize(
    ("event_payload", "reason"),
    [
        pytest.param(payload(action="deleted"), "action 'deleted' is ignored", id="deleted"),
        pytest.param(payload(draft=True), "is a draft", id="draft"),
        pytest.param(payload(tag_name="nightly"), "tag 'nightly' holds no semantic version", id="bad-tag"),
        pytest.param({"action": ["published"]}, "action ['published'] is ignored", id="unhashable-action"),
        pytest.param("published", "not a JSON object", id="string"),
    ],
)
def test_ignore_reasons(event_payload: Any, reason: str) -> None:
    event, why = parse_release_event(event_payload)
    assert event is None
    assert reason in why
    assert parse_release_event(payload()) == (release_from_event(payload()), "")


@pytest.mark.parametrize(
    "event_payload",
    [
        pytest.param(payload(action="deleted"), id="deleted"),
        pytest.param(payload(action="unpublished"), id="unpublished"),
        pytest.param(payload(action="edited"), id="edited"),
        pytest.param(payload(action="prereleased"), id="prereleased-duplicate-of-published"),
        pytest.param(payload(draft=True), id="draft"),
        pytest.param(payload(action="created", draft=True), id="draft-created"),
        pytest.param(payload(tag_name="latest"), id="tag-without-version"),
        pytest.param(payload(tag_name="v1.4"), id="tag-not-semver"),
        pytest.param(payload(tag_name=""), id="empty-tag"),
        pytest.param(payload(tag_name=None), id="no-tag"),
        pytest.param({**payload(), "action": None}, id="no-action"),
        pytest.param({"action": {"x": 1}, "release": {}}, id="unhashable-action"),
        pytest.param({"action": "published"}, id="no-release"),
        pytest.param({"action": "published", "release": "v1.4.0"}, id="release-not-an-object"),
        pytest.param({"zen": "Keep it logically awesome.", "hook_id": 1}, id="ping"),
        pytest.param([], id="not-an-object"),
        pytest.param(None, id="none"),
    ],
)
def test_ignored_events(event_payload: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="releases.github.events"):
        assert release_from_event(event_payload) is None
    assert "ignoring GitHub release event" in caplog.text


def test_payload_is_not_modified() -> None:
    original = payload()
    snapshot = copy.deepcopy(original)
    release_from_event(original)
    assert original == snapshot


def test_missing_repository_is_tolerated() -> None:
    data = payload()
    del data["repository"]
    event = release_from_event(data)
    assert event is not None and event.repository is None
