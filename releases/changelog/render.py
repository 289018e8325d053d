"""Release notes markdown -> sanitized HTML (markdown-it-py renders, nh3/ammonia sanitizes)."""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        *(f"h{level}" for level in range(1, 7)),
        "p",
        "br",
        "hr",
        "ul",
        "ol",
        "li",
        "a",
        "code",
        "pre",
        "em",
        "strong",
        "del",
        "s",
        "blockquote",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "details",  # Release Please wraps per-component notes in <details><summary> in monorepos
        "summary",
    }
)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"a": {"href", "title"}, "ol": {"start"}, "code": {"class"}}
URL_SCHEMES: frozenset[str] = frozenset({"http", "https"})
LINK_REL = "noopener noreferrer nofollow"

_LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+-]{1,40}")

# Raw HTML is let through markdown-it on purpose (so <details>/<br> in notes render) and then everything goes
# through nh3 with a strict allowlist; markdown-it's own link validation (no javascript:/vbscript:/data:)
# is a first line of defence, nh3 the one that counts.
_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "code" and attribute == "class":  # fenced code info string: keep "language-python" only
        return value if _LANGUAGE_CLASS.fullmatch(value) else None
    return value


def sanitize_html(html: str) -> str:
    """Sanitize an HTML fragment with the release-notes allowlist."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style"},
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes=set(URL_SCHEMES),
        url_relative="deny",
        link_rel=LINK_REL,
        strip_comments=True,
    )


def render_html(markdown: str) -> str:
    """Render release notes markdown (CommonMark + tables + strikethrough) to sanitized HTML.

    Allowed: headings, paragraphs, line breaks, rules, lists, links, code/pre, em/strong, del/s, blockquotes,
    tables, details/summary. Links keep ``href`` only for absolute http(s) URLs (relative and other schemes
    lose their ``href``) and get ``rel="noopener noreferrer nofollow"``. Images, scripts, styles, iframes,
    forms, event handlers and ``style``/``id`` attributes are removed; ``<script>``/``<style>`` with their content.
    """
    if not markdown:
        return ""
    return sanitize_html(_markdown.render(markdown))
