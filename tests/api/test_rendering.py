"""``releases.api.rendering.OrjsonRenderer`` writes the bytes DRF's ``JSONRenderer`` writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer

from releases.api.rendering import OrjsonRenderer

DATA = {
    "count": 2,
    "results": [
        {"reference": "ghcr.io/org/app:1.0.0", "ours": True, "problems": [], "withdrawn": None, "size": 12},
        {"reference": "ghcr.io/org/app:2.0.0", "ours": False, "problems": ["unknown: ünïcode, \u2028 and \u2029"]},
    ],
    "detail": ErrorDetail("give one reference", code="invalid"),
    "lazy": gettext_lazy("a lazy translation"),
    "when": datetime(2026, 12, 7, 13, 5, 1, 123456, tzinfo=UTC),
    "amount": Decimal("1.50"),
}


def test_the_bytes_are_those_drf_writes():
    ours, drf = OrjsonRenderer().render(DATA), JSONRenderer().render(DATA)
    assert ours == drf
    assert b"\\u2028" in ours and "ünïcode".encode() in ours  # line separators escaped, the rest UTF-8
    assert json.loads(ours)["when"] == "2026-12-07T13:05:01.123456Z"  # DRF's form (Z), not orjson's (+00:00)


def test_an_indent_asked_for_is_drfs_rendering():
    media = "application/json; indent=2"
    assert OrjsonRenderer().render(DATA, media) == JSONRenderer().render(DATA, media)
    assert b'\n  "count": 2' in OrjsonRenderer().render(DATA, media)


def test_nothing_renders_as_nothing():
    assert OrjsonRenderer().render(None) == b""
