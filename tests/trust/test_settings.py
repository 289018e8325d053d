"""The admission settings, read and checked at start."""

from __future__ import annotations

from tests.releases.test_settings import printed_setting, start

BASE = {"DEBUG": "true"}


def test_a_short_admission_token_refuses_the_start():
    result = start({**BASE, "ADMISSION_TOKEN": "short"})
    assert result.returncode != 0
    assert "ADMISSION_TOKEN must be at least 16 characters" in result.stderr


def test_the_admission_token_is_scrubbed_from_logs_and_the_lists_are_split():
    token = "a-long-admission-token-0123456789"
    env = {
        **BASE,
        "ADMISSION_TOKEN": token,
        "ADMISSION_ALLOWED_IMAGES": "registry.k8s.io/pause:*, docker.io/library/busybox:*",
        "ADMISSION_WARN_NAMESPACES": "staging,dev-*",
        "ADMISSION_PIN_NAMESPACES": "*",
        "VERIFY_BATCH_MAX": "50",
    }
    assert printed_setting(env, f"{token!r} in s.SCRUBBED_SECRETS") == "True"
    assert (
        printed_setting(env, "s.ADMISSION_ALLOWED_IMAGES")
        == "['registry.k8s.io/pause:*', 'docker.io/library/busybox:*']"
    )
    assert printed_setting(env, "(s.ADMISSION_WARN_NAMESPACES, s.ADMISSION_PIN_NAMESPACES, s.VERIFY_BATCH_MAX)") == (
        "(['staging', 'dev-*'], ['*'], 50)"
    )
    assert "VERIFY_BATCH_MAX=0 must be at least 1" in start({**BASE, "VERIFY_BATCH_MAX": "0"}).stderr
