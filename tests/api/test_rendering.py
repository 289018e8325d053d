"""``releases.api.rendering``: ``OrjsonRenderer`` writes the bytes DRF's ``JSONRenderer`` writes, and
``OrjsonParser`` reads what DRF's ``JSONParser`` reads and refuses what it refuses."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

from releases.api.rendering import OrjsonParser, OrjsonRenderer

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


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (b'["ghcr.io/org/app:1.0.0", {"images": ["\xc3\xbc"]}]', "utf-8"),
        ('{"reason": "caf\u00e9"}'.encode("latin-1"), "latin-1"),
        (b"[1, 2.5, null, true]", "utf-8"),
    ],
)
def test_the_parser_reads_what_drfs_reads(body, encoding):
    context = {"encoding": encoding}
    assert OrjsonParser().parse(io.BytesIO(body), parser_context=context) == JSONParser().parse(
        io.BytesIO(body), parser_context=context
    )


@pytest.mark.parametrize("body", [b"[1,", b"[NaN]", b"", b"\xff\xfe"])
def test_the_parser_refuses_what_drf_refuses_with_its_error(body):
    with pytest.raises(ParseError) as drf:
        JSONParser().parse(io.BytesIO(body), parser_context={})
    with pytest.raises(ParseError) as ours:
        OrjsonParser().parse(io.BytesIO(body), parser_context={})
    assert str(ours.value).startswith("JSON parse error - ") and str(drf.value).startswith("JSON parse error - ")
