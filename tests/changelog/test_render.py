"""render_html: markdown -> sanitized HTML, and XSS payloads neutralised."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from releases.changelog import parse_release_notes, render_html
from releases.changelog.render import ALLOWED_TAGS
from tests.changelog import fixture
from tests.changelog.test_parser import RELEASE_1_4_0


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.tags


def assert_safe(html: str) -> None:
    """Only allowlisted tags; links only http(s) with the rel we set; no event handlers or styles anywhere."""
    for tag, attrs in tags_of(html):
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), html
            assert name in {"href", "title", "rel", "start", "class"}, (name, html)
            if name == "href":
                assert value is not None and value.startswith(("https://", "http://")), html
        if tag == "a":
            assert attrs.get("rel") == "noopener noreferrer nofollow", html
    lowered = html.lower()
    for needle in ("<script", "<style", "<iframe", "<img", "<svg", "<object", "<embed", "<form", "style=", "srcdoc"):
        assert needle not in lowered, (needle, html)


XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<iframe src=https://evil.example srcdoc='<script>alert(1)</script>'></iframe>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    "![x](https://tracker.example/pixel.png)",
    "<javascript:alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="https://ok.example" onclick="alert(1)" onmouseover="alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    "[x](//evil.example/protocol-relative)",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<style>body { display: none }</style>",
    '<form action="https://evil.example"><input name=x></form>',
    '<object data="https://evil.example/x.swf"></object>',
    "<details open ontoggle=alert(1)><summary>x</summary></details>",
    '<p title="x" id="y" class="z">p</p>',
    '```x" onmouseover="alert(1)\ncode\n```',
    "<!-- <script>alert(1)</script> -->",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "* **api:** <img src=x onerror=alert(1)> ([#1](javascript:alert(1)))",
]


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payloads_are_neutralised(payload: str) -> None:
    html = render_html(payload)
    assert_safe(html)
    assert_safe(render_html(f"## 1.0.0\n\n### Features\n\n* {payload}\n\n> {payload}\n\n| a |\n|---|\n| {payload} |\n"))


def test_script_content_is_dropped_not_shown() -> None:
    assert "alert" not in render_html("<script>alert(1)</script>ok")
    assert render_html("<script>alert(1)</script>ok").strip() == "ok"


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("## Features", "<h2>Features</h2>"),
        ("* **api:** drop it", "<ul>\n<li><strong>api:</strong> drop it</li>\n</ul>"),
        ("*em* and `code`", "<p><em>em</em> and <code>code</code></p>"),
        (
            "[#88](https://github.com/o/r/issues/88)",
            '<p><a href="https://github.com/o/r/issues/88" rel="noopener noreferrer nofollow">#88</a></p>',
        ),
        ("line one  \nline two", "<p>line one<br>\nline two</p>"),
        ("```python\nprint(1)\n```", '<pre><code class="language-python">print(1)\n</code></pre>'),
        ("3. three\n4. four", '<ol start="3">\n<li>three</li>\n<li>four</li>\n</ol>'),
        ("~~gone~~", "<p><s>gone</s></p>"),
        ("[relative](/docs)", '<p><a rel="noopener noreferrer nofollow">relative</a></p>'),
        ("[mail](mailto:a@example.com)", '<p><a rel="noopener noreferrer nofollow">mail</a></p>'),
        ("a < b & c", "<p>a &lt; b &amp; c</p>"),
        ("", ""),
    ],
)
def test_rendering(markdown: str, expected: str) -> None:
    assert render_html(markdown).strip() == expected


def test_release_please_notes_render() -> None:
    html = render_html(RELEASE_1_4_0)
    assert_safe(html)
    assert html.count("<li>") == 5
    assert '<a href="https://github.com/stianfro/threek8s/compare/v1.3.2...v1.4.0"' in html
    assert "<h3>⚠ BREAKING CHANGES</h3>" in html


@pytest.mark.parametrize(
    "name", ["threek8s_CHANGELOG.md", "monorepo_frontend_CHANGELOG.md", "hand_edited_CHANGELOG.md"]
)
def test_fixture_changelogs_render_safely(name: str) -> None:
    text = fixture(name)
    assert_safe(render_html(text))
    assert_safe(render_html(parse_release_notes(text).markdown))
