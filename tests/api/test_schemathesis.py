"""Property-based API testing from our own OpenAPI schema: no 5xx, no response that breaks it."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from registry.wsgi import application
from releases.models import ApiToken
from tests.fixtures.factories import make_published_set, make_release

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def keep_test_connection():
    # The in-process WSGI app would close the test's database connection after each request (as
    # Django's test client prevents); keep it open so the test transaction survives.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def write_token(db, keep_test_connection, settings, oci_registry) -> str:
    # A live registry, so readiness (/api/v1/health/ready/) is ready: its 503 is for a dead one.
    settings.REGISTRY_NAMESPACE = f"{oci_registry.host}/fuzz"
    make_release("2.0.0")
    make_published_set("1.0.0")
    token = ApiToken(name="fuzz", scope=ApiToken.Scope.WRITE)
    key = token.issue()
    token.save()
    return key


@pytest.mark.services
@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, write_token):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {write_token}"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
