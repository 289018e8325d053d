""".helmignore rules, matched the way Helm matches them.

Helm's rules (``helm.sh/helm/v4/internal/ignore``), reproduced here so that a chart we package
holds exactly the files ``helm package``/``helm template`` would read:

* one pattern per line; blank lines and lines starting with ``#`` are skipped;
* a pattern without ``/`` is matched against the file's base name (``*.tmp``, ``.git``);
* a pattern containing ``/`` is matched against the path relative to the chart root
  (``templates/*.bak``); a leading ``/`` anchors it at the root (``/secrets``);
* a trailing ``/`` restricts the pattern to directories (``ci/``); an ignored directory is not
  descended into;
* ``*``, ``?`` and ``[...]`` follow Go's ``filepath.Match``: they never match ``/``;
  ``**`` is refused (Helm refuses it too);
* ``!pattern``: Helm's (surprising) semantics are kept: a path that does NOT match a negated
  pattern is ignored; a negated pattern never re-includes a path an earlier rule ignored.

Helm always adds ``templates/.?*`` (hidden files in ``templates/`` are ignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

HELMIGNORE = ".helmignore"
DEFAULT_RULES = ("templates/.?*",)


class IgnoreSyntaxError(ValueError):
    """A .helmignore line Helm would refuse (``**``, unbalanced ``[``), or a symlinked .helmignore."""


def _go_match_regex(pattern: str) -> re.Pattern[str]:
    """Translate a Go ``filepath.Match`` pattern to a regular expression (whole-string match)."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            i += 1
            if i >= n:
                raise IgnoreSyntaxError(f"pattern {pattern!r} ends with an escape character")
            out.append(re.escape(pattern[i]))
        elif char == "[":
            end = i + 1
            if end < n and pattern[end] == "^":
                end += 1
            if end < n and pattern[end] == "]":
                end += 1
            while end < n and pattern[end] != "]":
                end += 1
            if end >= n:
                raise IgnoreSyntaxError(f"pattern {pattern!r} has an unterminated character class")
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            if negate:
                body = body[1:]
            if not body:
                raise IgnoreSyntaxError(f"pattern {pattern!r} has an empty character class")
            escaped = body.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
            out.append(f"[^{escaped}]" if negate else f"[{escaped}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


@dataclass(frozen=True)
class _Rule:
    raw: str
    regex: re.Pattern[str]
    negate: bool
    must_dir: bool
    base_name_only: bool

    def matches(self, relpath: str) -> bool:
        subject = PurePosixPath(relpath).name if self.base_name_only else relpath
        return self.regex.match(subject) is not None


class IgnoreRules:
    """A parsed .helmignore (plus Helm's default rule). ``ignored(relpath, is_dir)`` decides."""

    def __init__(self, lines: Iterable[str] = (), *, defaults: bool = True) -> None:
        self._rules: list[_Rule] = []
        for line in (*DEFAULT_RULES, *lines) if defaults else tuple(lines):
            self._add(line)

    @classmethod
    def for_chart(cls, chart_dir: Path) -> IgnoreRules:
        """The rules of ``chart_dir/.helmignore`` (only the defaults when there is none)."""
        path = chart_dir / HELMIGNORE
        if path.is_symlink():  # its target could be any file of the worker; never read it
            raise IgnoreSyntaxError(f"{HELMIGNORE} is a symbolic link; commit the file itself")
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        return cls(lines)

    def _add(self, line: str) -> None:
        rule = line.strip()
        if not rule or rule.startswith("#"):
            return
        if "**" in rule:
            raise IgnoreSyntaxError(f".helmignore: double-star (**) syntax is not supported: {rule!r}")
        raw = rule
        negate = rule.startswith("!")
        if negate:
            rule = rule[1:]
        must_dir = rule.endswith("/")
        if must_dir:
            rule = rule.rstrip("/")
        base_name_only = "/" not in rule
        rule = rule.lstrip("/")
        if not rule:
            return
        self._rules.append(_Rule(raw, _go_match_regex(rule), negate, must_dir, base_name_only))

    def ignored(self, relpath: str, is_dir: bool) -> bool:
        """Helm's ``Rules.Ignore`` for a path relative to the chart root (``/``-separated)."""
        if relpath in ("", ".", "./"):
            return False
        for rule in self._rules:
            if rule.negate:
                if rule.must_dir and not is_dir:
                    return True
                if not rule.matches(relpath):
                    return True
                continue
            if rule.must_dir and not is_dir:
                continue
            if rule.matches(relpath):
                return True
        return False


def chart_files(chart_dir: Path, rules: IgnoreRules | None = None) -> list[str]:
    """Every file of the chart Helm would load, as sorted ``/``-separated relative paths.

    Ignored directories are not descended into. Unlike Helm, symbolic links are skipped, never
    followed (a chart with links is refused, see :mod:`releases.charts.confine`); anything that is
    neither a file nor a directory is skipped.
    """
    rules = rules if rules is not None else IgnoreRules.for_chart(chart_dir)
    found: list[str] = []

    def walk(directory: Path, prefix: str) -> None:
        for entry in sorted(directory.iterdir(), key=lambda p: p.name):
            relpath = f"{prefix}{entry.name}"
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if not rules.ignored(relpath, True):
                    walk(entry, relpath + "/")
            elif entry.is_file() and not rules.ignored(relpath, False):
                found.append(relpath)

    walk(chart_dir, "")
    return sorted(found)
