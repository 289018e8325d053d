"""Settings read the environment once and refuse bad values at start, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DEBUG", "SECRET_KEY", "SECURE_SSL_REDIRECT"}
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *(args or ("check",))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def printed_setting(env_overrides: dict[str, str], expression: str) -> str:
    """What the settings make of ``env_overrides``: ``expression`` on ``s`` (the settings), printed."""
    result = start(env_overrides, "shell", "-c", f"from django.conf import settings as s; print({expression})")
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEBUG": "false"}, "SECRET_KEY is required"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DEBUG": "true", "DATABASE_URL": "mysql://x/y"}, "DATABASE_URL="),
        ({"DEBUG": "true", "CELERY_BROKER_URL": "amqp://guest@x//"}, "CELERY_BROKER_URL="),
        ({"DEBUG": "true", "REGISTRY_NAMESPACE": "Not A Namespace"}, "REGISTRY_NAMESPACE="),
        ({"DEBUG": "true", "IMAGE_SIZE_BUDGET_BYTES": "big"}, "IMAGE_SIZE_BUDGET_BYTES="),
        ({"DEBUG": "true", "STALLED_AFTER_MINUTES": "0"}, "STALLED_AFTER_MINUTES=0 must be at least 1"),
        ({"DEBUG": "true", "BUILD_TIME_LIMIT_SECONDS": "an hour"}, "BUILD_TIME_LIMIT_SECONDS="),
        ({"DEBUG": "true", "LOG_LEVEL": "verbose"}, "LOG_LEVEL='VERBOSE' must be one of DEBUG, INFO"),
        ({"DEBUG": "true", "LOG_FORMAT": "xml"}, "LOG_FORMAT='xml' must be text or json"),
        ({"DEBUG": "true", "AUDIT_BATCH_SIZE": "0"}, "AUDIT_BATCH_SIZE=0 must be at least 1"),
        ({"DEBUG": "true", "EMAIL_PORT": "smtp"}, "EMAIL_PORT="),
        ({"DEBUG": "true", "EMAIL_USE_TLS": "perhaps"}, "EMAIL_USE_TLS="),
        ({"DEBUG": "true", "PROMETHEUS_MULTIPROC_DIR": "/nonexistent/metrics"}, "PROMETHEUS_MULTIPROC_DIR="),
        (
            {"DEBUG": "true", "CHART_DEPENDENCY_HOSTS": "charts.example.com,https://registry.internal:5000"},
            "CHART_DEPENDENCY_HOSTS: 'https://registry.internal:5000' is not a host: it may hold no scheme",
        ),
    ],
)
def test_bad_value_fails_at_start_naming_the_variable(env, named):
    result = start(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    result = start(
        {
            "DEBUG": "false",
            "SECRET_KEY": "x7!" * 20 + "production-grade-secret",
            "ALLOWED_HOSTS": "registry.example.com",
        },
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_quick_start_defaults_to_sqlite_and_the_threek8s_namespace():
    printed = printed_setting({"DEBUG": "true"}, "s.DATABASES['default']['ENGINE'], s.REGISTRY_NAMESPACE")
    assert printed.split() == ["django.db.backends.sqlite3", "ghcr.io/stianfro/threek8s"]


def test_chart_dependency_hosts_are_read_as_host_patterns():
    printed = printed_setting(
        {"DEBUG": "true", "CHART_DEPENDENCY_HOSTS": " Charts.Example.com , *.internal.test:8443,[FD00::1]:5000,"},
        "s.CHART_DEPENDENCY_HOSTS",
    )
    assert printed == "['charts.example.com', '*.internal.test:8443', '[fd00::1]:5000']"


def test_the_visibility_timeout_outlasts_the_longest_hard_time_limit_by_default():
    printed = printed_setting(
        {"DEBUG": "true", "BUILD_TIME_LIMIT_SECONDS": "7200"}, "s.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout']"
    )
    assert printed == str(7200 + 60 + 300)


def test_a_visibility_timeout_shorter_than_a_hard_time_limit_is_warned_about():
    result = start({"DEBUG": "true", "CELERY_VISIBILITY_TIMEOUT": "3600"}, "check", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "releases.W001" in result.stderr and "CELERY_VISIBILITY_TIMEOUT (3600 s)" in result.stderr
    assert "(3660 s)" in result.stderr and "second worker" in result.stderr
    assert (
        start({"DEBUG": "true", "CELERY_VISIBILITY_TIMEOUT": "3661"}, "check", "--fail-level", "WARNING").returncode
        == 0
    )
