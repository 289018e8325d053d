"""Find the base image of a Dockerfile's final stage, without a Docker engine.

The release pipeline needs it before building (to check the base against a policy, and to know
what ``pull`` will fetch). This is a small subset of the Dockerfile grammar, faithful where it
matters for ``FROM``: parser directives (``# escape=``), comments, line continuations, the ``ARG``
instructions before the first ``FROM`` (with defaults, build-arg overrides and ``${VAR:-default}``
style substitution), quotes, ``--platform=`` flags, ``AS name`` and a final ``FROM`` that names an
earlier stage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from releases.imagebuild.errors import DockerfileError

_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(\S+)\s*$")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODIFIERS = (":-", ":+", ":?", "-", "+", "?")


def _parse_directives(lines: list[str]) -> str:
    """Return the escape character declared by a leading ``# escape=`` directive (default ``\\``)."""
    escape = "\\"
    for line in lines:
        match = _DIRECTIVE_RE.match(line.strip())
        if not match:
            break
        if match.group(1).lower() == "escape":
            if match.group(2) not in ("\\", "`"):
                raise DockerfileError(f"invalid escape directive {match.group(2)!r}: use \\ or `")
            escape = match.group(2)
    return escape


def logical_lines(dockerfile_text: str) -> tuple[list[str], str]:
    """Split a Dockerfile into instructions (continuations joined, comments dropped) and its escape."""
    raw_lines = dockerfile_text.lstrip("\ufeff").splitlines()
    escape = _parse_directives(raw_lines)
    result: list[str] = []
    buffer: str | None = None
    for raw in raw_lines:
        stripped = raw.strip()
        # Comment and empty lines are dropped, including inside a continued instruction.
        if not stripped or stripped.startswith("#"):
            continue
        line = raw.rstrip()
        if line.endswith(escape):
            buffer = (buffer or "") + line[: -len(escape)]
            continue
        result.append(((buffer or "") + line).strip())
        buffer = None
    if buffer is not None and buffer.strip():
        result.append(buffer.strip())
    return result, escape


class _Expander:
    """Shell-like word splitting and ``$VAR`` expansion as the Dockerfile parser does it."""

    def __init__(self, env: Mapping[str, str | None], escape: str):
        self.env = env
        self.escape = escape

    def words(self, text: str) -> list[str]:
        words: list[str] = []
        current: list[str] = []
        in_word = False
        i, n = 0, len(text)
        while i < n:
            char = text[i]
            if char.isspace():
                if in_word:
                    words.append("".join(current))
                    current, in_word = [], False
                i += 1
                continue
            in_word = True
            if char == self.escape and i + 1 < n:
                current.append(text[i + 1])
                i += 2
            elif char == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise DockerfileError(f"unterminated single quote in {text!r}")
                current.append(text[i + 1 : end])
                i = end + 1
            elif char == '"':
                i += 1
                while i < n and text[i] != '"':
                    if text[i] == self.escape and i + 1 < n and text[i + 1] in ('"', "$", self.escape):
                        current.append(text[i + 1])
                        i += 2
                    elif text[i] == "$":
                        value, i = self._variable(text, i)
                        current.append(value)
                    else:
                        current.append(text[i])
                        i += 1
                if i >= n:
                    raise DockerfileError(f"unterminated double quote in {text!r}")
                i += 1
            elif char == "$":
                value, i = self._variable(text, i)
                current.append(value)
            else:
                current.append(char)
                i += 1
        if in_word:
            words.append("".join(current))
        return words

    def expand(self, text: str) -> str:
        """Expand variables in ``text`` as one word (used for ``${VAR:-word}`` defaults)."""
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            if text[i] == self.escape and i + 1 < n:
                out.append(text[i + 1])
                i += 2
            elif text[i] == "$":
                value, i = self._variable(text, i)
                out.append(value)
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def _variable(self, text: str, i: int) -> tuple[str, int]:
        """Expand the ``$`` reference starting at ``text[i]``; return (value, index after it)."""
        n = len(text)
        if i + 1 < n and text[i + 1] == "{":
            close = self._matching_brace(text, i + 1)
            inner = text[i + 2 : close]
            match = _NAME_RE.match(inner)
            if not match:
                raise DockerfileError(f"bad substitution {text[i : close + 1]!r}")
            name, rest = match.group(0), inner[match.end() :]
            value = self.env.get(name)
            if not rest:
                return value or "", close + 1
            modifier = next((m for m in _MODIFIERS if rest.startswith(m)), None)
            if modifier is None:
                raise DockerfileError(f"bad substitution {text[i : close + 1]!r}")
            word = rest[len(modifier) :]
            is_set = value is not None
            is_nonempty = bool(value)
            present = is_nonempty if modifier.startswith(":") else is_set
            if modifier.endswith("-"):
                result = value if present else self.expand(word)
            elif modifier.endswith("+"):
                result = self.expand(word) if present else ""
            else:  # "?" / ":?"
                if not present:
                    raise DockerfileError(f"{name}: {self.expand(word) or 'is not set'}")
                result = value
            return result or "", close + 1
        match = _NAME_RE.match(text, i + 1)
        if match:
            return self.env.get(match.group(0)) or "", match.end()
        return "$", i + 1

    @staticmethod
    def _matching_brace(text: str, open_index: int) -> int:
        depth = 0
        for index in range(open_index, len(text)):
            if text[index] == "{":
                depth += 1
            elif text[index] == "}":
                depth -= 1
                if depth == 0:
                    return index
        raise DockerfileError(f"missing '}}' in {text[open_index - 1 :]!r}")


def final_base_image(dockerfile_text: str, build_args: Mapping[str, str] | None = None) -> str:
    """Return the image reference the final stage is built ``FROM`` (``"scratch"`` for scratch).

    ``ARG`` instructions before the first ``FROM`` define the variables ``FROM`` may use; a value in
    ``build_args`` overrides the declared default (undeclared build args are ignored, as Docker does).
    A final ``FROM <stage>`` resolves (recursively) to that stage's base image.

    Raises :class:`DockerfileError` when there is no ``FROM`` or it cannot be resolved.
    """
    build_args = dict(build_args or {})
    lines, escape = logical_lines(dockerfile_text)
    meta_args: dict[str, str | None] = {}
    expander = _Expander(meta_args, escape)
    stages: list[tuple[str | None, str]] = []  # (lower-case stage name, resolved base image)
    for line in lines:
        parts = line.split(None, 1)
        instruction = parts[0].upper()
        rest = parts[1] if len(parts) > 1 else ""
        if instruction == "ARG" and not stages:
            for word in expander.words(rest):
                name, has_default, default = word.partition("=")
                if not _NAME_RE.fullmatch(name):
                    raise DockerfileError(f"invalid ARG name {name!r} in {line!r}")
                if name in build_args:
                    meta_args[name] = build_args[name]
                else:
                    meta_args[name] = default if has_default else None
        elif instruction == "FROM":
            words = expander.words(rest)
            while words and words[0].startswith("--"):
                flag = words.pop(0)
                if not flag.startswith("--platform="):
                    raise DockerfileError(f"unknown FROM flag {flag!r} in {line!r}")
            if not words or not words[0]:
                raise DockerfileError(f"FROM without an image in {line!r} (an ARG without a value?)")
            image, name = words[0], None
            if len(words) == 3 and words[1].lower() == "as":
                name = words[2].lower()
            elif len(words) != 1:
                raise DockerfileError(f"cannot parse {line!r}: expected FROM [--platform=...] image [AS name]")
            earlier = {stage_name: base for stage_name, base in stages if stage_name}
            resolved = earlier.get(image.lower(), image)
            stages.append((name, resolved))
    if not stages:
        raise DockerfileError("the Dockerfile has no FROM instruction")
    return stages[-1][1]
