"""``/api/docs/`` works with no internet: Swagger UI comes from our own static files (drf-spectacular-sidecar)."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_api_docs_reference_only_local_static_files(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r"url\(['\"]?([^'\")]+)", page)
    assert urls, "the page loads Swagger UI from somewhere"
    assert not [url for url in urls if "//" in url], f"remote URLs in /api/docs/: {urls}"
    assets = [url for url in urls if url.startswith("/static/")]
    assert any(url.endswith("swagger-ui-bundle.js") for url in assets)
    for url in assets:
        assert finders.find(url.removeprefix("/static/")), f"{url} is not a static file we serve"
    assert "cdn" not in page.lower()
