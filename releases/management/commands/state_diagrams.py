"""Print the three state machines as Mermaid diagrams, drawn from the models' own transitions.

README's "State machines" section is this command's output (a test keeps them equal), so the
pictures cannot drift from the code. ``--check README.md`` exits 1 when they differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from releases.models import DockerImage, HelmChart, ReleaseVersion

MODELS = (ReleaseVersion, DockerImage, HelmChart)
BEGIN, END = "<!-- state-diagrams:begin -->", "<!-- state-diagrams:end -->"


def mermaid(model) -> str:
    """``stateDiagram-v2`` of ``model.state``: every declared transition, labelled by its name;
    transitions a person may fire in the admin are marked ``(admin)``."""
    field = model._meta.get_field("state")
    edges = set()
    for transition in field.get_all_transitions(model):
        label = transition.name + (" (admin)" if transition.custom.get("admin") else "")
        edges.add((transition.source, transition.target, label))
    lines = ["```mermaid", "stateDiagram-v2", f"    [*] --> {field.default}"]
    lines += [f"    {source} --> {target}: {label}" for source, target, label in sorted(edges)]
    lines.append("```")
    return "\n".join(lines)


def diagrams() -> str:
    parts = [BEGIN]
    for model in MODELS:
        parts += [f"**{model.__name__}**", "", mermaid(model), ""]
    parts.append(END)
    return "\n".join(parts)


class Command(BaseCommand):
    help = "Print the state machines as Mermaid diagrams (README's section); --check FILE compares."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", metavar="FILE", help="exit 1 when FILE's diagrams differ from the models")

    def handle(self, *args, check: str | None = None, **options) -> None:
        wanted = diagrams()
        if check is None:
            self.stdout.write(wanted)
            return
        text = Path(check).read_text()
        found = text[text.find(BEGIN) : text.find(END) + len(END)] if BEGIN in text and END in text else ""
        if found != wanted:
            self.stderr.write(f"{check}: the state diagrams differ from the models; paste `manage.py state_diagrams`")
            sys.exit(1)
        self.stdout.write(f"{check}: state diagrams match the models")
