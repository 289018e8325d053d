"""HTML fragments the admin's screens share: digests, copy buttons, scan findings, signing status."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join


def short_digest(digest: str) -> str:
    return f"{digest[:19]}…" if digest else "—"


SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def copy_button(text: str) -> str:
    return format_html('<button type="button" class="button cr-copy" data-copy="{}">copy</button>', text)


def platform_digests_html(platform_digests: dict, repository: str, index_digest: str) -> str:
    """Each platform's manifest digest, pinned reference and a copy button; the index first."""
    rows = []
    if index_digest:
        rows.append(("index (all platforms)", index_digest, ""))
    for platform, entry in sorted((platform_digests or {}).items()):
        # The push records per platform {"digest", "size", "os", "architecture", ...}; older rows a bare digest.
        digest = entry.get("digest", "") if isinstance(entry, dict) else str(entry)
        size = entry.get("size") if isinstance(entry, dict) else None
        rows.append((platform, digest, f"{size:,} bytes" if isinstance(size, int) else ""))
    if not rows:
        return "— (recorded by the push)"
    body = format_html_join(
        "",
        "<tr><td>{}</td><td><code>{}</code>{}</td><td><code>{}</code>{}</td><td>{}</td></tr>",
        (
            (
                platform,
                digest,
                copy_button(digest),
                f"{repository}@{digest}",
                copy_button(f"{repository}@{digest}"),
                size,
            )
            for platform, digest, size in rows
        ),
    )
    return format_html(
        '<table class="cr-table cr-platforms"><thead><tr><th>platform</th><th>digest</th><th>pull by digest</th>'
        "<th>size</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )


def scan_findings_html(findings: list) -> str:
    """The scan's findings, most severe first, with a count per severity."""
    if not findings:
        return "none"
    rows = sorted(
        (f for f in findings if isinstance(f, dict)),
        key=lambda f: (SEVERITY_ORDER.get(str(f.get("severity", "")).lower(), 9), str(f.get("check", ""))),
    )
    counts: dict[str, int] = {}
    for finding in rows:
        severity = str(finding.get("severity", "unknown")).lower()
        counts[severity] = counts.get(severity, 0) + 1
    summary = format_html_join(
        " ", '<span class="cr-badge cr-severity-{}">{} {}</span>', ((k, k, v) for k, v in counts.items())
    )
    body = format_html_join(
        "",
        '<tr data-severity="{}"><td><span class="cr-badge cr-severity-{}">{}</span></td>'
        "<td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
        (
            (
                str(f.get("severity", "")).lower(),
                str(f.get("severity", "")).lower(),
                f.get("severity", ""),
                f.get("check", ""),
                f.get("path", "") or f.get("platform", ""),
                f.get("message", ""),
            )
            for f in rows
        ),
    )
    return format_html(
        '<p>{}</p><table class="cr-table cr-scan"><thead><tr><th>severity</th><th>check</th><th>where</th>'
        "<th>message</th></tr></thead><tbody>{}</tbody></table>",
        summary,
        body,
    )


def key_value_html(values: dict, *, empty: str) -> str:
    if not values:
        return empty
    body = format_html_join(
        "", "<tr><th><code>{}</code></th><td>{}</td></tr>", sorted((str(k), str(v)) for k, v in values.items())
    )
    return format_html('<table class="cr-table cr-labels"><tbody>{}</tbody></table>', body)


def environment_html(variables) -> str:
    """The image's environment variables; a secret's value is never shown, only that it is set."""
    rows = []
    for variable in variables:
        if variable.secret:
            value = format_html("<em>{}</em>", "hidden (secret)" if variable.default_value else "— (secret)")
        else:
            value = format_html("<code>{}</code>", variable.default_value or "—")
        rows.append((variable.name, variable.scope, "yes" if variable.required else "no", value))
    if not rows:
        return "none"
    body = format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
    return format_html(
        '<table class="cr-table cr-env"><thead><tr><th>name</th><th>scope</th><th>required</th><th>default</th>'
        "</tr></thead><tbody>{}</tbody></table>",
        body,
    )


def signing_html(status: dict) -> str:
    return format_html('<span class="{}">{}</span>', "cr-signed" if status["signed"] else "cr-unsigned", status["text"])


# The build record: every stage's base, and per platform the build's steps (durations, cache hits).
def stage_bases_html(stages: list[dict]) -> str:
    if not stages:
        return "—"
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
        (
            (
                stage.get("stage", ""),
                stage.get("base", ""),
                stage.get("digest") or "unknown",
                stage.get("platform") or "target",
                "final" if stage.get("final") else "",
            )
            for stage in stages
        ),
    )
    return format_html(
        "<table><thead><tr><th>stage</th><th>base</th><th>digest</th><th>--platform</th><th></th></tr></thead>"
        "<tbody>{}</tbody></table>",
        rows,
    )


def build_steps_html(build_steps: dict) -> str:
    if not build_steps:
        return "—"
    sections = []
    for platform, record in sorted(build_steps.items()):
        if record.get("failed"):
            header = format_html("<p><strong>{}</strong>: failed (network {})</p>", platform, record.get("network"))
            sections.append(format_html('{}<pre class="cr-log">{}</pre>', header, record["failed"]))
            continue
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            (
                (step.get("step", ""), "cached" if step.get("cached") else f"{step.get('seconds') or 0:.1f} s")
                for step in record.get("steps", [])
            ),
        )
        sections.append(
            format_html(
                "<p><strong>{}</strong>: {} s, network {}</p><table><tbody>{}</tbody></table>",
                platform,
                f"{record.get('seconds') or 0:.1f}",
                record.get("network"),
                rows,
            )
        )
    return format_html_join("", "{}", ((section,) for section in sections))
