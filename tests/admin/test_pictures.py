"""The server-drawn SVG pictures (plain Python): one mark per stage, run or image, every string
escaped, and the size budget drawn with what exceeds it marked."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from releases.admin.pictures import (
    AuditPoint,
    SizePoint,
    StageBar,
    audit_history_svg,
    human_seconds,
    size_budget_svg,
    timeline_svg,
)

SVG = "{http://www.w3.org/2000/svg}"


def marks(svg: str, css_class: str) -> list[ET.Element]:
    return [e for e in ET.fromstring(svg).iter() if css_class in e.get("class", "").split()]


def test_timeline_draws_one_bar_per_stage_scaled_to_its_duration():
    bars = [
        StageBar("threek8s-frontend", "building", 0, 10),
        StageBar("threek8s-frontend", "scanning", 10, 100),
        StageBar("chart threek8s", "validating", 100, 101, running=True),
    ]
    svg = timeline_svg(bars, ["threek8s-frontend", "chart threek8s"], "timeline")

    groups = marks(svg, "cr-bar")
    assert [(g.get("data-lane"), g.get("data-stage")) for g in groups] == [
        ("threek8s-frontend", "building"),
        ("threek8s-frontend", "scanning"),
        ("chart threek8s", "validating"),
    ]
    widths = [float(g.find(f"{SVG}rect").get("width")) for g in groups]
    assert widths[1] == pytest.approx(9 * widths[0], rel=0.01)  # the slow scan is obvious
    assert "cr-running" in groups[2].get("class")
    assert groups[1].find(f"{SVG}title").text == "threek8s-frontend: scanning 1 min 30 s"


def test_pictures_escape_what_they_are_given():
    svg = timeline_svg([StageBar("<script>", "building", 0, 1)], ["<script>"], 'a "title" & <b>')
    ET.fromstring(svg)  # well-formed
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_audit_history_has_one_run_per_audit_oldest_first():
    start = datetime(2026, 11, 26, 10, tzinfo=UTC)
    points = [AuditPoint(start + timedelta(minutes=15 * i), 100 + i, i % 2, "succeeded") for i in range(4)]
    runs = marks(audit_history_svg(points, "audits"), "cr-audit-run")
    assert [(r.get("data-tags"), r.get("data-findings")) for r in runs] == [
        ("100", "0"),
        ("101", "1"),
        ("102", "0"),
        ("103", "1"),
    ]


def test_size_picture_draws_the_budget_and_marks_images_over_it():
    points = [
        SizePoint("1.0.0", "threek8s-backend", 40 * 2**20),
        SizePoint("1.0.0", "threek8s-frontend", 60 * 2**20),
    ]
    svg = size_budget_svg(points, 50 * 2**20, "sizes")
    assert len(marks(svg, "cr-budget")) == 1
    over = marks(svg, "cr-over-budget")
    assert [b.get("data-image") for b in over] == ["threek8s-frontend"]
    assert "budget 50.0 MiB" in svg
    far = size_budget_svg(points, 2**30, "sizes")
    assert not marks(far, "cr-budget") and "budget 1.0 GiB: far above, off the scale" in far


def test_empty_pictures_say_so():
    assert "nothing has run yet" in timeline_svg([], ["release"], "t")
    assert "no audit has run yet" in audit_history_svg([], "a")
    assert "no image has been pushed yet" in size_budget_svg([SizePoint("1.0.0", "x", None)], 1, "s")


def test_durations_read_naturally():
    assert [human_seconds(s) for s in (9.24, 90, 3725)] == ["9.2 s", "1 min 30 s", "1 h 02 min"]
