"""The admin's read-only tables of an image's build record: every stage's base, and per platform
the build's steps with their durations and cache hits (``DockerImage.stage_bases``/``build_steps``)."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join


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
