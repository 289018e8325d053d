"""YAML loading the way Helm sees it: plain data, no Python-specific objects, bounded in size.

PyYAML's safe loader turns ``2024-01-01`` into a ``datetime.date``; Helm (sigs.k8s.io/yaml) keeps
it a string. :class:`HelmYamlLoader` drops the timestamp resolver so values stay JSON-compatible
(values end up in JSON columns and in JSON Schema validation).

Aliases (``*name``) are shared when loaded but expand when the values are stored as JSON or walked
by a validator: a few hundred bytes of nested aliases ("billion laughs") become gigabytes. Before
building anything, :func:`check_expansion` walks the parser's events once and counts what every
document would expand to, refusing it with :class:`YamlExpansionError` past the limits below.
Nesting depth needs no limit of ours: libyaml refuses documents nested deeper than 1000 levels.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Values (scalars, lists and mappings) that expanding the aliases of one document may add. Values
#: written out are bounded by the file's size limit; what aliases add is not. 100,000 values is
#: about 2 MB of JSON, far more than shared defaults need.
MAX_YAML_ALIAS_NODES = 100_000
#: Alias uses one document may hold once nested aliases are expanded. Hand-written YAML uses a
#: few dozen (shared defaults, ``<<: *base``); nested aliases multiply, which is the attack.
MAX_YAML_ALIAS_EXPANSIONS = 1_000


class HelmYamlLoader(_Base):  # type: ignore[valid-type,misc]
    """Safe loader without implicit timestamps (they stay strings)."""


HelmYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}


class YamlExpansionError(yaml.YAMLError):
    """A document whose aliases expand past the limits, or refer to themselves.

    ``problem`` and ``problem_mark`` (where the offending alias is) follow PyYAML's marked
    errors, so :func:`describe_yaml_error` shows the line and column.
    """

    def __init__(self, problem: str, problem_mark: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = problem_mark


def check_expansion(
    text: str,
    *,
    max_alias_nodes: int = MAX_YAML_ALIAS_NODES,
    max_alias_expansions: int = MAX_YAML_ALIAS_EXPANSIONS,
) -> None:
    """Refuse ``text`` when one of its documents expands past the limits; build nothing.

    Counts, per document, the nodes (scalars, sequences, mappings) and the alias uses that
    replacing every alias by a copy of its anchor would add, from the parser's events only: an
    anchor's expanded counts are recorded when it ends and added at each alias, so nothing is
    expanded and a refused document costs one pass of the parser.
    Raises :class:`YamlExpansionError` (or PyYAML's own error for a syntax error).
    """
    expanded: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, alias uses) once expanded
    open_anchors: set[str] = set()
    stack: list[tuple[str | None, int, int]] = []  # per open collection: anchor, counts at its start
    nodes = alias_nodes = aliases = 0
    for event in yaml.parse(text, Loader=HelmYamlLoader):  # noqa: S506 - events only, nothing is built
        if isinstance(event, yaml.DocumentStartEvent):
            expanded.clear()
            open_anchors.clear()
            nodes = alias_nodes = aliases = 0
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor:
                expanded[event.anchor] = (1, 0)
        elif isinstance(event, yaml.CollectionStartEvent):
            stack.append((event.anchor, nodes, aliases))
            nodes += 1
            if event.anchor:
                open_anchors.add(event.anchor)
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, nodes_before, aliases_before = stack.pop()
            if anchor:
                expanded[anchor] = (nodes - nodes_before, aliases - aliases_before)
                open_anchors.discard(anchor)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                raise YamlExpansionError(
                    f"alias *{event.anchor} is inside its own anchor &{event.anchor} (a recursive structure, "
                    "which cannot be stored as JSON); write the values out instead",
                    event.start_mark,
                )
            # An undefined alias counts as nothing here; the loader reports it as a syntax error.
            anchor_nodes, anchor_aliases = expanded.get(event.anchor, (0, 0))
            nodes += anchor_nodes
            alias_nodes += anchor_nodes
            aliases += anchor_aliases + 1
        else:
            continue
        if alias_nodes > max_alias_nodes:
            raise YamlExpansionError(
                f"its aliases (*name) expand to more than {max_alias_nodes:,} values (the limit; aliases "
                "inside anchors multiply); use fewer or less nested aliases, or write the values out",
                event.start_mark,
            )
        if aliases > max_alias_expansions:
            raise YamlExpansionError(
                f"its aliases (*name) expand to more than {max_alias_expansions:,} alias uses (the limit; "
                "aliases inside anchors multiply); use fewer or less nested aliases",
                event.start_mark,
            )


def load_yaml(
    text: str,
    *,
    max_alias_nodes: int = MAX_YAML_ALIAS_NODES,
    max_alias_expansions: int = MAX_YAML_ALIAS_EXPANSIONS,
) -> Any:
    """One YAML document as plain data (dicts, lists, str, int, float, bool, None).

    Raises :class:`YamlExpansionError` when its aliases expand past the limits (see
    :func:`check_expansion`), PyYAML's errors for invalid YAML.
    """
    check_expansion(text, max_alias_nodes=max_alias_nodes, max_alias_expansions=max_alias_expansions)
    return yaml.load(text, Loader=HelmYamlLoader)  # noqa: S506 - a safe loader


def load_all_yaml(
    text: str,
    *,
    max_alias_nodes: int = MAX_YAML_ALIAS_NODES,
    max_alias_expansions: int = MAX_YAML_ALIAS_EXPANSIONS,
) -> Iterator[Any]:
    """Every document of a multi-document YAML stream; the limits apply to each document."""
    check_expansion(text, max_alias_nodes=max_alias_nodes, max_alias_expansions=max_alias_expansions)
    return yaml.load_all(text, Loader=HelmYamlLoader)  # noqa: S506 - a safe loader


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """A one-line description with line/column (1-based) when PyYAML knows them."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    text = f"{where}{problem}"
    if context:
        text += f" ({context})"
    return text
