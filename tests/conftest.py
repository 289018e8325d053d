import pytest

from tests.fixtures.services import TEST_FIELD_ENCRYPTION_KEY

pytest_plugins = [
    "tests.fixtures.factories",
    "tests.fixtures.registry",
    "tests.fixtures.dockerd",
    "tests.fixtures.base_image",
    "tests.fixtures.token_auth",
    "tests.fixtures.celery_worker",
    "tests.fixtures.helm",
    "tests.fixtures.release_please",
    "tests.fixtures.faults",
    "tests.fixtures.network",
]


@pytest.fixture(autouse=True)
def field_encryption_keys(settings):
    """Secret environment variables need FIELD_ENCRYPTION_KEYS; tests run with DEBUG off."""
    if not settings.FIELD_ENCRYPTION_KEYS:
        settings.FIELD_ENCRYPTION_KEYS = [TEST_FIELD_ENCRYPTION_KEY]
