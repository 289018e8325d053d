"""The Dockerfile's syntax as BuildKit's current frontend reads it: directives, instructions, heredocs.

A port of the parts of ``moby/buildkit`` ``frontend/dockerfile/parser`` (``Parse``, ``splitCommand``,
``extractBuilderFlags``, ``heredocsFromLine``, ``ParseHeredoc``) and of the word lexer of
``frontend/dockerfile/shell`` that decide where an instruction, its flags and its here-documents
begin and end. Plain Python, no engine.

Why not ``dockerfile-parse`` (PyPI): it knows no here-documents (a heredoc's body lines come back
as instructions, so a ``FROM`` written inside one would count as a stage), splits flags only for
``FROM --platform``, ignores ``# escape=`` when splitting words and has no ``${VAR:-default}``
forms. Lowering must know exactly which lines belong to which instruction, so this module follows
BuildKit's own code instead (the line references are to buildkit's ``parser.go``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from releases.imagebuild.errors import DockerfileError
from releases.imagebuild.shellwords import ShellLexer

HEREDOC_INSTRUCTIONS = frozenset({"ADD", "COPY", "RUN"})
_DIRECTIVE_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_WHITESPACE_RE = re.compile(r"[\t\v\f\r ]+")
_HEREDOC_WORD_RE = re.compile(r"^(\d*)<<(-?)\s*([^<]*)$", re.DOTALL)
_LEADING_TABS_RE = re.compile(r"^\t+", re.MULTILINE)


@dataclass(frozen=True)
class Directive:
    name: str  # lower case: syntax, escape, check
    value: str
    line: int  # 1-based


@dataclass(frozen=True)
class Heredoc:
    """One here-document: ``<<[-]NAME`` on the instruction's line and its body below it."""

    name: str  # the delimiter with quotes removed
    expand: bool  # False when any part of the delimiter was quoted
    chomp: bool  # ``<<-``: leading tabs are stripped
    content: str  # the body lines exactly as written, each with its line ending
    fd: int = 0

    @property
    def chomped_content(self) -> str:
        """The body as BuildKit hands it over: leading tabs removed for ``<<-``."""
        return chomp_heredoc_content(self.content) if self.chomp else self.content


@dataclass(frozen=True)
class Instruction:
    """One instruction: its logical line (continuations joined, comments dropped) and heredocs.

    ``line``/``end_line`` are 1-based and cover the heredoc bodies; ``flags`` are the words of
    the leading ``--name=value`` flags as BuildKit unquotes them, ``flags_text`` the same flags as
    written, ``args`` the rest of the line (trimmed).
    """

    keyword: str  # upper case
    original: str
    flags: tuple[str, ...]
    flags_text: str
    args: str
    line: int
    end_line: int
    heredocs: tuple[Heredoc, ...] = ()
    is_json: bool = False
    onbuild_keyword: str | None = None  # for ONBUILD: the triggered instruction's keyword

    def flag_names(self) -> list[str]:
        return [flag[2:].partition("=")[0].lower() for flag in self.flags]

    def flag_values(self, name: str) -> list[str]:
        values = []
        for flag in self.flags:
            flag_name, has_value, value = flag[2:].partition("=")
            if flag_name.lower() == name:
                values.append(value if has_value else "")
        return values


@dataclass(frozen=True)
class ParsedDockerfile:
    directives: tuple[Directive, ...]
    escape: str
    instructions: tuple[Instruction, ...]
    lines: tuple[str, ...] = field(repr=False)  # the physical lines, each with its line ending

    def directive(self, name: str) -> Directive | None:
        return next((directive for directive in self.directives if directive.name == name), None)


def chomp_heredoc_content(content: str) -> str:
    return _LEADING_TABS_RE.sub("", content)


def _is_space(char: str) -> bool:
    return char.isspace()


def _is_comment(line: str) -> bool:
    stripped = line.lstrip()
    return stripped.startswith("#")


def _trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


class _DirectiveReader:
    """BuildKit's ``DirectiveParser``: directives only until the first line that is not one."""

    def __init__(self) -> None:
        self.line = 0
        self.done = False
        self.seen: set[str] = set()
        self.found: list[Directive] = []

    def read(self, line: str) -> Directive | None:
        self.line += 1
        if self.done:
            return None
        if not line.startswith("#"):
            self.done = True
            return None
        match = _DIRECTIVE_RE.match(line[1:].lstrip())
        if not match or match.group(1).lower() not in _KNOWN_DIRECTIVES:
            self.done = True
            return None
        name = match.group(1).lower()
        if name in self.seen:
            raise DockerfileError(f"line {self.line}: only one {name} parser directive can be used")
        self.seen.add(name)
        directive = Directive(name, match.group(2), self.line)
        self.found.append(directive)
        return directive


class _Continuation:
    def __init__(self, escape: str):
        quoted = re.escape(escape)
        self.pattern = re.compile(rf"([^{quoted}]){quoted}[ \t]*$|^{quoted}[ \t]*$")

    def trim(self, line: str) -> tuple[str, bool]:
        """(line without the continuation character, whether the instruction ends here)."""
        if self.pattern.search(line):
            return self.pattern.sub(r"\1", line, count=1), False
        return line, True


def parse_dockerfile(text: str) -> ParsedDockerfile:
    """Split a Dockerfile into directives and instructions exactly where BuildKit does.

    Raises :class:`DockerfileError` (naming the line) for an unterminated heredoc, a repeated
    directive or an invalid escape character.
    """
    lines = text.splitlines(keepends=True)
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    directives = _DirectiveReader()
    escape = "\\"
    continuation = _Continuation(escape)
    instructions: list[Instruction] = []
    index = 0  # next physical line to read (0-based); its number is index + 1

    def process(raw: str, strip_left: bool) -> str:
        nonlocal escape, continuation
        token = _trim_newline(raw)
        if strip_left:
            token = token.lstrip()
        directive = directives.read(token)
        if directive is not None and directive.name == "escape":
            if directive.value not in ("\\", "`"):
                raise DockerfileError(f"line {directive.line}: invalid escape token {directive.value!r}: use ` or \\")
            escape = directive.value
            continuation = _Continuation(escape)
        return "" if _is_comment(token) else token

    while index < len(lines):
        token = process(lines[index], True)
        index += 1
        start_line = index
        logical, end_of_line = continuation.trim(token)
        if end_of_line and not logical:
            continue
        while not end_of_line and index < len(lines):
            raw = lines[index]
            token = process(raw, False)
            index += 1
            if _is_comment(raw):
                continue
            if not token.strip():
                continue  # an empty continuation line (BuildKit warns, then skips it)
            token, end_of_line = continuation.trim(token)
            logical += token
        keyword, flags, flags_text, args = split_command(logical, escape)
        upper = keyword.upper()
        onbuild_keyword = None
        is_json = False
        target = upper
        if upper == "ONBUILD" and args:
            onbuild_keyword = _WHITESPACE_RE.split(args.strip(), maxsplit=1)[0].upper()
            target = onbuild_keyword
            _, _, _, inner_args = split_command(args, escape)
            is_json = _is_json_array(inner_args)
        else:
            is_json = _is_json_array(args)
        heredocs: list[Heredoc] = []
        if target in HEREDOC_INSTRUCTIONS and not is_json and "<<" in logical:
            for word in heredoc_words(logical):
                terminator = word.name
                body: list[str] = []
                terminated = False
                while index < len(lines):
                    raw = lines[index]
                    index += 1
                    candidate = _trim_newline(raw)
                    if word.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == terminator:
                        terminated = True
                        break
                    body.append(raw)
                if not terminated:
                    raise DockerfileError(
                        f"line {start_line}: unterminated heredoc <<{'-' if word.chomp else ''}{terminator}: "
                        f"end it with a line holding exactly {terminator}"
                    )
                heredocs.append(
                    Heredoc(name=word.name, expand=word.expand, chomp=word.chomp, content="".join(body), fd=word.fd)
                )
        instructions.append(
            Instruction(
                keyword=upper,
                original=logical,
                flags=tuple(flags),
                flags_text=flags_text,
                args=args,
                line=start_line,
                end_line=index,
                heredocs=tuple(heredocs),
                is_json=is_json,
                onbuild_keyword=onbuild_keyword,
            )
        )
    return ParsedDockerfile(
        directives=tuple(directives.found), escape=escape, instructions=tuple(instructions), lines=tuple(lines)
    )


def _is_json_array(args: str) -> bool:
    stripped = args.strip()
    if not stripped.startswith("["):
        return False
    try:
        value = json.loads(stripped)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def split_command(line: str, escape: str) -> tuple[str, list[str], str, str]:
    """``splitCommand``: (keyword as written, flag words, flags as written, the rest trimmed)."""
    parts = _WHITESPACE_RE.split(line.strip(), maxsplit=1)
    keyword = parts[0]
    if len(parts) < 2:
        return keyword, [], "", ""
    rest, flags = _extract_builder_flags(parts[1], escape)
    flags_text = parts[1][: len(parts[1]) - len(rest)].strip() if flags or rest != parts[1] else ""
    return keyword, flags, flags_text, rest.strip()


def _extract_builder_flags(line: str, escape: str) -> tuple[str, list[str]]:
    """``extractBuilderFlags``: the leading ``--flag`` words (unquoted) and the rest of the line."""
    words: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    current: list[str] = []
    quote = ""
    blank_ok = False
    position = 0
    length = len(line)
    while position <= length:
        char = line[position] if position < length else ""
        if phase == in_spaces:
            if position == length:
                break
            if _is_space(char):
                position += 1
                continue
            if char != "-" or position + 1 == length or line[position + 1] != "-":
                return line[position:], words
            phase = in_word
        if phase in (in_word, in_quote) and position == length:
            word = "".join(current)
            if word != "--" and (blank_ok or word):
                words.append(word)
            break
        if phase == in_word:
            if _is_space(char):
                word = "".join(current)
                phase = in_spaces
                if word == "--":
                    return line[position:], words
                if blank_ok or word:
                    words.append(word)
                current = []
                blank_ok = False
                position += 1
                continue
            if char in ("'", '"'):
                quote = char
                blank_ok = True
                phase = in_quote
                position += 1
                continue
            if char == escape:
                if position + 1 == length:
                    position += 1
                    continue
                position += 1
                char = line[position]
            current.append(char)
            position += 1
            continue
        if phase == in_quote:
            if char == quote:
                phase = in_word
                position += 1
                continue
            if char == escape:
                if position + 1 == length:
                    phase = in_word
                    position += 1
                    continue
                position += 1
                char = line[position]
            current.append(char)
            position += 1
    return "", words


@dataclass(frozen=True)
class HeredocWord:
    name: str
    expand: bool
    chomp: bool
    fd: int


def heredoc_words(line: str) -> list[HeredocWord]:
    """``heredocsFromLine``: every ``<<WORD`` among the shell words of ``line``, in order."""
    try:
        words = ShellLexer(raw_quotes=True, raw_escapes=True, skip_unset_env=True).words(line)
    except DockerfileError:
        return []
    found = []
    for word in words:
        heredoc = parse_heredoc_word(word)
        if heredoc is not None:
            found.append(heredoc)
    return found


def parse_heredoc_word(word: str) -> HeredocWord | None:
    """``ParseHeredoc``: the heredoc a single word declares (``<<EOF``, ``<<-'EOF'``), or None."""
    match = _HEREDOC_WORD_RE.match(word)
    if not match or not match.group(3):
        return None
    fd = int(match.group(1)) if match.group(1) else 0
    chomp = match.group(2) == "-"
    rest = match.group(3)
    unquoted = ShellLexer(skip_unset_env=True).words(rest)
    if len(unquoted) != 1:
        return None
    raw = ShellLexer(raw_quotes=True, skip_unset_env=True).words(rest)
    if len(raw) != 1:
        raise DockerfileError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    quotes_unquoted = unquoted[0].count("'") + unquoted[0].count('"')
    quotes_raw = raw[0].count("'") + raw[0].count('"')
    return HeredocWord(name=unquoted[0], expand=quotes_unquoted == quotes_raw, chomp=chomp, fd=fd)
