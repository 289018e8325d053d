"""Changelogs over the API: one release's as sections, markdown or sanitized HTML, and the merged
sections of a range of versions."""

from __future__ import annotations

import dataclasses

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions

from ..changelog import merge_between, parse_release_notes, render_html
from ..models import ReleaseVersion
from ..validators import parse_semver
from ..versions import version_sort_key

CHANGELOG_FORMATS = ("json", "markdown", "html")


def changelog_format(request) -> str:
    """The ``?format=`` asked for; refuses (400) anything but json, markdown and html."""
    chosen = request.query_params.get("format", "json")
    if chosen not in CHANGELOG_FORMATS:
        raise exceptions.ValidationError({"format": [f"use one of {', '.join(CHANGELOG_FORMATS)}, not {chosen!r}"]})
    return chosen


def release_markdown(release: ReleaseVersion) -> str:
    return release.changelog or release.release_notes


def changelog_body(release: ReleaseVersion, chosen: str) -> dict:
    """One release's changelog as markdown, sanitized HTML, or structured sections."""
    markdown = release_markdown(release)
    body: dict = {"version": release.version, "format": chosen}
    if chosen == "markdown":
        body["markdown"] = markdown
    elif chosen == "html":
        body["html"] = render_html(markdown)
    else:
        body["sections"] = parse_release_notes(markdown).to_dict()["sections"]
    return body


def version_bounds(query_params) -> tuple[str, str]:
    """``(from, to)`` of ``?from=&to=``: both semantic versions, ``to`` after ``from``; refuses (400)
    with every problem at once."""
    errors, bounds = {}, {}
    for name in ("from", "to"):
        value = query_params.get(name, "")
        try:
            parse_semver(value)
            bounds[name] = value
        except DjangoValidationError as error:
            errors[name] = error.messages if value else [f"give ?{name}=<version>, e.g. 1.2.0"]
    if errors:
        raise exceptions.ValidationError(errors)
    if version_sort_key(bounds["from"]) >= version_sort_key(bounds["to"]):
        raise exceptions.ValidationError({"to": [f"{bounds['to']} is not after {bounds['from']}"]})
    return bounds["from"], bounds["to"]


def changelog_between(low: str, high: str) -> dict:
    """The sections of every release after ``low`` up to and including ``high``, oldest first."""
    releases = ReleaseVersion.objects.filter(
        version_order__gt=version_sort_key(low), version_order__lte=version_sort_key(high)
    ).order_by("version_order")
    notes = [
        dataclasses.replace(parse_release_notes(release_markdown(release)), version=release.version)
        for release in releases
    ]
    sections = merge_between(notes, low, high, newest_first=False)
    return {
        "from": low,
        "to": high,
        "versions": [n.version for n in notes],
        "sections": [section.to_dict() for section in sections],
    }
