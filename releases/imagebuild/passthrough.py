"""Stand-ins for the ``lowering`` branch's ``lowering.lower_dockerfile`` and ``stages.stage_bases``
(issue 20, item 3), with the same interface, until that branch is merged: delete this module then
and import from ``releases.imagebuild.lowering`` / ``releases.imagebuild.stages``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from releases.imagebuild.dockerfile import _NAME_RE, _Expander, logical_lines
from releases.imagebuild.errors import DockerfileError


@dataclass
class LoweredDockerfile:
    dockerfile: str
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class UnsupportedDockerfile(DockerfileError):
    def __init__(self, problems: list) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None
    base: str
    platform: str | None
    line: int
    is_final: bool
    from_stage: str | None = None


def lower_dockerfile(text: str, *, dockerfile_path: str = "Dockerfile") -> LoweredDockerfile:
    return LoweredDockerfile(text)


def stage_bases(text: str, build_args: Mapping[str, str]) -> list[Stage]:
    lines, escape = logical_lines(text)
    meta: dict[str, str | None] = {}
    expander = _Expander(meta, escape)
    found: list[tuple[str | None, str, str | None, str | None]] = []
    for line in lines:
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "ARG" and not found:
            for word in expander.words(rest):
                name, has_default, default = word.partition("=")
                if _NAME_RE.fullmatch(name):
                    meta[name] = build_args.get(name, default if has_default else None)
        elif instruction.upper() == "FROM":
            raw = rest.split()
            platform = next((w.split("=", 1)[1] for w in raw if w.startswith("--platform=")), None)
            words = [w for w in expander.words(rest) if not w.startswith("--")]
            name = words[2].lower() if len(words) == 3 and words[1].lower() == "as" else None
            earlier = {stage[0]: stage for stage in found if stage[0]}
            source = earlier.get(words[0].lower())
            base = source[1] if source else words[0]
            found.append((name, base, platform, words[0].lower() if source else None))
    return [
        Stage(index, name, base, platform, 0, index == len(found) - 1, from_stage)
        for index, (name, base, platform, from_stage) in enumerate(found)
    ]
