"""Pictures for the admin, drawn as inline SVG strings on the server (plain Python, no Django).

Hand-written SVG rather than a plotting library: three small charts need rectangles, lines and
text; matplotlib would add numpy and ~50 ms a figure, pygal a dependency for what fits in one
screen. Every mark carries ``class`` and ``data-*`` attributes (styled by the admin's CSS, read
by the browser tests) and a ``<title>`` (the browser's tooltip), and every string is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

__all__ = [
    "AuditPoint",
    "SizePoint",
    "StageBar",
    "audit_history_svg",
    "human_bytes",
    "human_seconds",
    "size_budget_svg",
    "timeline_svg",
]

WIDTH = 880
LABEL_WIDTH = 180
# The overview's two small pictures sit side by side: narrower, so their text stays legible.
SMALL_WIDTH = 600
SMALL_LABEL_WIDTH = 110
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass(frozen=True)
class StageBar:
    """One stage of one lane (``release``, an image, the chart), in seconds from the picture's start."""

    lane: str
    stage: str
    start: float
    end: float
    running: bool = False


@dataclass(frozen=True)
class AuditPoint:
    started: datetime
    tags_checked: int
    findings: int
    status: str


@dataclass(frozen=True)
class SizePoint:
    release: str
    image: str
    size: int | None


def human_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _svg(height: int, title: str, body: list[str], css_class: str, width: int = WIDTH) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cr-picture {css_class}" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" {FONT}>'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _ticks(maximum: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``maximum``."""
    if maximum <= 0:
        return [0.0]
    raw = maximum / count
    magnitude = 10 ** (len(str(int(raw))) - 1) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(int(maximum // step) + 2) if step * i <= maximum * 1.0001 + step]


def timeline_svg(bars: Sequence[StageBar], lanes: Sequence[str], title: str) -> str:
    """One lane per row (the release, each image, the chart), one bar per stage it went through."""
    if not bars:
        return _svg(40, title, ['<text x="8" y="24" class="cr-empty">nothing has run yet</text>'], "cr-timeline")
    total = max(max(bar.end for bar in bars), 1.0)
    plot = WIDTH - LABEL_WIDTH - 20
    lane_height, top = 24, 8
    height = top + lane_height * len(lanes) + 30
    scale = plot / total
    body: list[str] = []
    for index, lane in enumerate(lanes):
        y = top + index * lane_height
        body.append(f'<rect x="0" y="{y}" width="{WIDTH}" height="{lane_height}" class="cr-lane-{index % 2}"/>')
        body.append(f'<text x="6" y="{y + 16}" class="cr-lane-label">{escape(lane)}</text>')
    for tick in _ticks(total):
        x = LABEL_WIDTH + tick * scale
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - 24}" class="cr-grid"/>')
        body.append(
            f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle" class="cr-axis">{human_seconds(tick)}</text>'
        )
    for bar in bars:
        y = top + lanes.index(bar.lane) * lane_height + 4
        x = LABEL_WIDTH + bar.start * scale
        width = max((bar.end - bar.start) * scale, 2.0)
        duration = human_seconds(bar.end - bar.start)
        running = " cr-running" if bar.running else ""
        body.append(
            f'<g class="cr-bar{running}" data-lane="{escape(bar.lane)}" data-stage="{escape(bar.stage)}">'
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{lane_height - 8}" rx="2" '
            f'class="bar cr-stage-{escape(bar.stage)}"/>'
            f"<title>{escape(bar.lane)}: {escape(bar.stage)} {duration}{' (running)' if bar.running else ''}</title>"
        )
        label = f"{bar.stage} {duration}"
        if width > len(label) * 6 + 6:
            body.append(f'<text x="{x + 4:.1f}" y="{y + 12}" class="cr-bar-label">{escape(label)}</text>')
        body.append("</g>")
    return _svg(height, title, body, "cr-timeline")


def audit_history_svg(points: Sequence[AuditPoint], title: str) -> str:
    """Tags checked (grey) and findings seen (red) per audit run, oldest on the left."""
    width, label = SMALL_WIDTH, SMALL_LABEL_WIDTH
    if not points:
        body = ['<text x="8" y="24" class="cr-empty">no audit has run yet</text>']
        return _svg(40, title, body, "cr-audits", width)
    plot_top, band, gap = 8, 70, 26
    height = plot_top + 2 * band + gap + 30
    plot = width - label - 10
    slot = plot / len(points)
    bar = max(min(slot * 0.7, 24), 1.5)
    tags_max = max(max(p.tags_checked for p in points), 1)
    findings_max = max(max(p.findings for p in points), 1)
    body = [
        f'<text x="6" y="{plot_top + 14}" class="cr-lane-label">tags checked</text>',
        f'<text x="6" y="{plot_top + 28}" class="cr-axis">max {tags_max}</text>',
        f'<text x="6" y="{plot_top + band + gap + 14}" class="cr-lane-label">findings</text>',
        f'<text x="6" y="{plot_top + band + gap + 28}" class="cr-axis">max {findings_max}</text>',
    ]
    for base in (plot_top + band, plot_top + 2 * band + gap):
        body.append(f'<line x1="{label}" x2="{width - 10}" y1="{base}" y2="{base}" class="cr-grid"/>')
    for index, point in enumerate(points):
        x = label + index * slot + (slot - bar) / 2
        when = f"{point.started:%Y-%m-%d %H:%M}"
        tags_height = band * point.tags_checked / tags_max
        findings_height = band * point.findings / findings_max
        crashed = " cr-crashed" if point.status == "crashed" else ""
        body.append(
            f'<g class="cr-audit-run{crashed}" data-tags="{point.tags_checked}" data-findings="{point.findings}">'
            f"<title>{when}: {point.tags_checked} tags checked, {point.findings} findings ({escape(point.status)})"
            f"</title>"
            f'<rect x="{x:.1f}" y="{plot_top + band - tags_height:.1f}" width="{bar:.1f}" '
            f'height="{max(tags_height, 1):.1f}" class="bar cr-tags"/>'
            f'<rect x="{x:.1f}" y="{plot_top + 2 * band + gap - findings_height:.1f}" width="{bar:.1f}" '
            f'height="{findings_height:.1f}" class="bar cr-findings"/></g>'
        )
    first, last = points[0].started, points[-1].started
    body.append(f'<text x="{label}" y="{height - 8}" class="cr-axis">{first:%Y-%m-%d %H:%M}</text>')
    body.append(
        f'<text x="{width - 10}" y="{height - 8}" text-anchor="end" class="cr-axis">{last:%Y-%m-%d %H:%M}</text>'
    )
    return _svg(height, title, body, "cr-audits", width)


def size_budget_svg(points: Sequence[SizePoint], budget: int, title: str) -> str:
    """Each image's size per release (oldest on the left) against the budget line; over it is red.

    When every image is under a tenth of the budget, the scale follows the images (a line at the
    budget would flatten them to nothing) and the budget is named above the plot as off the scale."""
    width, label = SMALL_WIDTH, SMALL_LABEL_WIDTH
    sized = [p for p in points if p.size]
    if not sized:
        body = ['<text x="8" y="24" class="cr-empty">no image has been pushed yet</text>']
        return _svg(40, title, body, "cr-sizes", width)
    releases = list(dict.fromkeys(p.release for p in sized))
    images = sorted({p.image for p in sized})
    plot_top, band = 22, 130
    height = plot_top + band + 44
    plot = width - label - 10
    largest = max(sized, key=lambda p: p.size or 0)
    largest_size = largest.size or 0
    budget_on_scale = largest_size * 10 >= budget
    maximum = (max(largest_size, budget) if budget_on_scale else largest_size) * 1.1
    slot = plot / len(releases)
    bar = max(min(slot * 0.8 / len(images), 22), 1.5)
    body = [
        f'<text x="6" y="{plot_top + 12}" class="cr-lane-label">image size</text>',
        f'<text x="6" y="{plot_top + 28}" class="cr-axis">largest {human_bytes(largest_size)}</text>',
        f'<text x="6" y="{plot_top + 42}" class="cr-axis">{100 * largest_size / budget:.1f}% of budget</text>',
        f'<line x1="{label}" x2="{width - 10}" y1="{plot_top + band}" y2="{plot_top + band}" class="cr-grid"/>',
    ]
    if budget_on_scale:
        budget_y = plot_top + band - band * budget / maximum
        body += [
            f'<line x1="{label}" x2="{width - 10}" y1="{budget_y:.1f}" y2="{budget_y:.1f}" class="cr-budget"/>',
            f'<text x="{width - 12}" y="{budget_y - 4:.1f}" text-anchor="end" class="cr-budget-label">'
            f"budget {human_bytes(budget)}</text>",
        ]
    else:
        body.append(
            f'<text x="{width - 12}" y="12" text-anchor="end" class="cr-budget-label cr-off-scale">'
            f"budget {human_bytes(budget)}: far above, off the scale</text>"
        )
    for tick in _ticks(maximum / 1.1, 3)[1:]:
        y = plot_top + band - band * tick / maximum
        body.append(f'<line x1="{label}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" class="cr-grid cr-faint"/>')
        body.append(
            f'<text x="{label - 4}" y="{y + 3:.1f}" text-anchor="end" class="cr-axis">{human_bytes(tick)}</text>'
        )
    by_key = {(p.release, p.image): p.size for p in sized}
    for r_index, release in enumerate(releases):
        for i_index, image in enumerate(images):
            size = by_key.get((release, image))
            if not size:
                continue
            bar_height = max(band * size / maximum, 1.0)
            x = label + r_index * slot + (slot - bar * len(images)) / 2 + i_index * bar
            over = " cr-over-budget" if size > budget else ""
            body.append(
                f'<rect x="{x:.1f}" y="{plot_top + band - bar_height:.1f}" width="{bar:.1f}" '
                f'height="{bar_height:.1f}" class="bar cr-image-{i_index}{over}" data-release="{escape(release)}" '
                f'data-image="{escape(image)}" data-size="{size}">'
                f"<title>{escape(image)}:{escape(release)} {human_bytes(size)} "
                f"({100 * size / budget:.1f}% of budget)</title></rect>"
            )
        if len(releases) <= 12 or r_index % max(len(releases) // 6, 1) == 0:
            label_x = label + r_index * slot + slot / 2
            body.append(
                f'<text x="{label_x:.1f}" y="{plot_top + band + 14}" text-anchor="middle" class="cr-axis">'
                f"{escape(release)}</text>"
            )
    for i_index, image in enumerate(images):
        x = label + i_index * 170
        body.append(f'<rect x="{x}" y="{height - 14}" width="10" height="10" class="cr-image-{i_index}"/>')
        body.append(f'<text x="{x + 14}" y="{height - 5}" class="cr-axis">{escape(image)}</text>')
    return _svg(height, title, body, "cr-sizes", width)
