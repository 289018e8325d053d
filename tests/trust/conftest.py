import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def fresh_page_caches():
    """The release list and the chart index are cached per data generation, a counter that restarts
    when a test's data goes (rolled back or truncated): nothing these tests cache may answer for a
    later test at the same generation."""
    cache.clear()
    yield
    cache.clear()
