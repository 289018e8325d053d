"""Every stage of a Dockerfile and the base it is built FROM, without an engine.

The record (issue 20, item 7) keeps each stage's base pinned by digest; this finds the bases to
pin. Stages are read with :mod:`releases.imagebuild.syntax` (BuildKit's own splitting, so a
``FROM`` written inside a heredoc is not a stage); the ``ARG`` instructions before the first
``FROM`` are substituted as BuildKit does (``$VAR``, ``${VAR}``, ``${VAR:-default}``...; a build
arg overrides the declared default, undeclared build args are ignored).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from releases.imagebuild.dockerfile import _Expander
from releases.imagebuild.errors import DockerfileError
from releases.imagebuild.syntax import parse_dockerfile

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Stage:
    """One ``FROM``: ``base`` is the image it starts from, global ARGs substituted; for ``FROM <earlier
    stage>``, ``from_stage`` names that stage and ``base`` is the image that stage starts from."""

    index: int
    name: str | None  # lower case, as BuildKit compares stage names
    base: str
    platform: str | None  # the FROM --platform value as written ($BUILDPLATFORM stays)
    line: int
    is_final: bool
    from_stage: str | None = None

    @property
    def is_scratch(self) -> bool:
        return self.from_stage is None and self.base.lower() == "scratch"


def stage_bases(text: str, build_args: Mapping[str, str] | None = None) -> list[Stage]:
    """Every stage in order, the last one ``is_final``.

    Raises :class:`DockerfileError` naming the line when there is no ``FROM``, a ``FROM`` has no
    image (an ARG without a value) or an unknown flag, or the Dockerfile does not parse.
    """
    build_args = dict(build_args or {})
    parsed = parse_dockerfile(text)
    meta_args: dict[str, str | None] = {}
    # BuildKit expands FROM with its default escape (the directive only changes line splitting).
    expander = _Expander(meta_args, "\\")
    found: list[tuple[int, str | None, str, str | None, int, str | None]] = []
    names: dict[str, str] = {}  # stage name -> the image it starts from
    for instruction in parsed.instructions:
        if instruction.keyword == "ARG" and not found:
            for word in expander.words(instruction.args):
                name, has_default, default = word.partition("=")
                if not _NAME_RE.fullmatch(name):
                    raise DockerfileError(f"line {instruction.line}: invalid ARG name {name!r}")
                meta_args[name] = build_args.get(name, default if has_default else None)
        elif instruction.keyword == "FROM":
            platform = None
            for flag in instruction.flags:
                flag_name, _, value = flag[2:].partition("=")
                if flag_name.lower() != "platform":
                    raise DockerfileError(f"line {instruction.line}: unknown FROM flag --{flag_name}")
                platform = value
            words = instruction.args.split()
            if len(words) == 3 and words[1].lower() == "as":
                stage_name: str | None = words[2].lower()
            elif len(words) == 1:
                stage_name = None
            else:
                raise DockerfileError(
                    f"line {instruction.line}: expected FROM [--platform=...] image [AS name], "
                    f"got {instruction.original!r}"
                )
            expanded = expander.words(words[0])
            if not expanded or not expanded[0]:
                raise DockerfileError(
                    f"line {instruction.line}: FROM {words[0]} names no image (an ARG without a value?)"
                )
            base = expanded[0]
            from_stage = base.lower() if base.lower() in names else None
            if from_stage is not None:
                base = names[from_stage]
            found.append((len(found), stage_name, base, platform, instruction.line, from_stage))
            if stage_name:
                names[stage_name] = base
    if not found:
        raise DockerfileError("the Dockerfile has no FROM instruction")
    last = len(found) - 1
    return [
        Stage(index=index, name=name, base=base, platform=platform, line=line, is_final=index == last, from_stage=src)
        for index, name, base, platform, line, src in found
    ]
