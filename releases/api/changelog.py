"""Changelogs over the API: one release's as sections, markdown or sanitized HTML, and the merged
sections of a range of versions.

Both are served from the forms stored when the notes were written (``parsed_changelog``,
``changelog_html``); no read parses markdown. A range answers at most
``CHANGELOG_RANGE_MAX_RELEASES`` releases at once: a wider one is paged (``?page=``) or refused.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.utils.urls import replace_query_param

from ..changelog import merge_stored
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


def changelog_body(release: ReleaseVersion, chosen: str) -> dict:
    """One release's changelog as markdown, sanitized HTML, or structured sections."""
    body: dict = {"version": release.version, "format": chosen}
    if chosen == "markdown":
        body["markdown"] = release.notes_markdown
    elif chosen == "html":
        body["html"] = release.changelog_html
    else:
        body["sections"] = release.parsed_changelog.get("sections", [])
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


def _positive_int(query_params, name: str, default: int) -> int:
    raw = query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise exceptions.ValidationError({name: [f"?{name}= is a whole number from 1, not {raw!r}"]})
    return int(raw)


def range_page(request, count: int, low: str, high: str) -> tuple[int, int]:
    """``(page, page_size)`` asked for, over a range of ``count`` releases; refuses (400) a page size
    past the cap, and (404) a page past the last."""
    cap = settings.CHANGELOG_RANGE_MAX_RELEASES
    params = request.query_params
    page_size = _positive_int(params, "page_size", cap)
    if page_size > cap:
        raise exceptions.ValidationError(
            {"page_size": [f"at most {cap} releases per page (CHANGELOG_RANGE_MAX_RELEASES); ask for fewer"]}
        )
    page = _positive_int(params, "page", 1)
    last = max(1, -(-count // page_size))
    if page > last:
        raise exceptions.NotFound(f"page {page} is past the last page, {last}, of {low}..{high}")
    return page, page_size


def changelog_between(request, low: str, high: str) -> dict:
    """The sections of the releases after ``low`` up to and including ``high``, oldest first, one
    page of at most ``CHANGELOG_RANGE_MAX_RELEASES`` releases: two queries, no markdown parsed.

    Without ``?page=``, a range of more releases than the cap is refused (400), after counting no
    further than one past the cap."""
    cap = settings.CHANGELOG_RANGE_MAX_RELEASES
    releases = ReleaseVersion.objects.filter(
        version_order__gt=version_sort_key(low), version_order__lte=version_sort_key(high)
    ).order_by("version_order")
    if "page" in request.query_params:
        count = releases.count()
    else:
        count = releases[: cap + 1].count()
        if count > cap:
            raise exceptions.ValidationError(
                {
                    "range": [
                        f"{low}..{high} holds more than {cap} releases, the most answered at once "
                        f"(CHANGELOG_RANGE_MAX_RELEASES); narrow the range or page through it with "
                        f"?page=1&page_size={cap}"
                    ]
                }
            )
    page, page_size = range_page(request, count, low, high)
    start = (page - 1) * page_size
    rows = list(releases.values_list("version", "parsed_changelog")[start : start + page_size])
    url = request.build_absolute_uri()
    return {
        "from": low,
        "to": high,
        "count": count,
        "next": replace_query_param(url, "page", page + 1) if start + page_size < count else None,
        "previous": replace_query_param(url, "page", page - 1) if page > 1 else None,
        "versions": [version for version, _ in rows],
        "sections": merge_stored(rows),
    }
