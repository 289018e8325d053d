pytest_plugins = [
    "tests.fixtures.factories",
    "tests.fixtures.registry",
    "tests.fixtures.dockerd",
    "tests.fixtures.base_image",
    "tests.fixtures.token_auth",
    "tests.fixtures.celery_worker",
    "tests.fixtures.helm",
    "tests.fixtures.release_please",
]
