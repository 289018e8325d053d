"""The shell-word lexer BuildKit's Dockerfile frontend uses (a port of its shell.Lex): words, quotes
and escapes, and variable expansion (``$VAR``, ``${VAR:-default}`` and the other forms), for
heredoc delimiters, ``FROM`` bases and the lowering. Plain Python."""

from __future__ import annotations

from releases.imagebuild.errors import DockerfileError

_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class UnresolvedVariable(Exception):
    def __init__(self, reference: str):
        super().__init__(reference)
        self.reference = reference


class ShellLexer:
    """The Dockerfile word lexer (``shell.Lex``), with an empty environment.

    With ``skip_unset_env`` a variable reference is kept as written (as BuildKit does when looking
    for heredoc words); with ``refuse_variables`` any reference raises :class:`UnresolvedVariable`
    (used to expand a COPY heredoc statically: only its escapes can be resolved here).
    """

    def __init__(
        self,
        *,
        escape: str = "\\",
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_process_quotes: bool = False,
        skip_unset_env: bool = False,
        refuse_variables: bool = False,
    ):
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_process_quotes = skip_process_quotes
        self.skip_unset_env = skip_unset_env
        self.refuse_variables = refuse_variables
        self.text = ""
        self.position = 0

    # --- scanner -----------------------------------------------------------------------------
    def _peek(self) -> str:
        return self.text[self.position] if self.position < len(self.text) else ""

    def _next(self) -> str:
        char = self._peek()
        if char:
            self.position += 1
        return char

    # --- public ------------------------------------------------------------------------------
    def words(self, text: str) -> list[str]:
        return self._run(text)[1]

    def word(self, text: str) -> str:
        return self._run(text)[0]

    def _run(self, text: str) -> tuple[str, list[str]]:
        self.text, self.position = text, 0
        try:
            return self._process_stop_on("", self.raw_escapes)
        except DockerfileError as exc:
            raise DockerfileError(f"failed to process {text!r}: {exc}") from exc

    # --- the lexer ---------------------------------------------------------------------------
    def _process_stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        saved_raw = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            while self._peek():
                char = self._peek()
                if stop and char == stop:
                    self._next()
                    return "".join(result), words.finish()
                special = None
                if char == "$":
                    special = self._process_dollar
                elif char == "<":
                    special = self._process_possible_heredoc
                elif not self.skip_process_quotes and char == "'":
                    special = self._process_single_quote
                elif not self.skip_process_quotes and char == '"':
                    special = self._process_double_quote
                if special is not None:
                    piece = special()
                    result.append(piece)
                    if char == "$":
                        words.add_string(piece)
                    else:
                        words.add_raw_string(piece)
                    continue
                char = self._next()
                if char == self.escape:
                    if self.raw_escapes:
                        words.add_raw_char(char)
                        result.append(char)
                    char = self._next()
                    if not char:
                        break
                    words.add_raw_char(char)
                else:
                    words.add_char(char)
                result.append(char)
            if stop:
                raise DockerfileError(f"unexpected end of statement while looking for matching {stop}")
            return "".join(result), words.finish()
        finally:
            self.raw_escapes = saved_raw

    def _process_single_quote(self) -> str:
        result = []
        char = self._next()
        if self.raw_quotes:
            result.append(char)
        while True:
            char = self._next()
            if not char:
                raise DockerfileError("unexpected end of statement while looking for matching single-quote")
            if char == "'":
                if self.raw_quotes:
                    result.append(char)
                return "".join(result)
            result.append(char)

    def _process_double_quote(self) -> str:
        result = []
        char = self._next()
        if self.raw_quotes:
            result.append(char)
        while True:
            peek = self._peek()
            if not peek:
                raise DockerfileError("unexpected end of statement while looking for matching double-quote")
            if peek == '"':
                char = self._next()
                if self.raw_quotes:
                    result.append(char)
                return "".join(result)
            if peek == "$":
                result.append(self._process_dollar())
                continue
            char = self._next()
            if char == self.escape:
                if self.raw_escapes:
                    result.append(char)
                following = self._peek()
                if not following:
                    continue
                if following in ('"', "$", self.escape):
                    char = self._next()
            result.append(char)

    def _process_possible_heredoc(self) -> str:
        self._next()
        if self._peek() != "<":
            return "<"
        self._next()
        space = []
        while self._peek() and self._peek() in " \t":
            space.append(self._next())
        return "<<" + "".join(space)

    def _process_name(self) -> str:
        name: list[str] = []
        while self._peek():
            char = self._peek()
            if not name and char.isdigit():
                while self._peek() and self._peek().isdigit():
                    name.append(self._next())
                return "".join(name)
            if not name and char in _SPECIAL_PARAMS:
                return self._next()
            if not (char.isalpha() or char.isdigit() or char == "_"):
                break
            name.append(self._next())
        return "".join(name)

    def _process_dollar(self) -> str:
        start = self.position
        self._next()
        if self._peek() != "{":
            name = self._process_name()
            if not name:
                return "$"
            return self._unset(self.text[start : self.position], f"${name}")
        self._next()
        if not self._peek():
            raise DockerfileError("syntax error: missing '}'")
        if self._peek() in "{}:":
            raise DockerfileError("syntax error: bad substitution")
        name = self._process_name()
        char = self._next()
        if char == "}":
            return self._unset(self.text[start : self.position], f"${{{name}}}")
        modifier = char
        null_is_unset = False
        if char == ":":
            null_is_unset = True
            char = self._next()
            modifier += char
        if char in ("+", "-", "?", "#", "%"):
            raw = char in ("#", "%")
            if null_is_unset and raw:
                raise DockerfileError(f"unsupported modifier ({modifier}) in substitution")
            word, _ = self._process_stop_on("}", raw)
            return self._unset(self.text[start : self.position], f"${{{name}{modifier}{word}}}", modifier, word)
        if char == "/":
            if self._peek() == "/":
                self._next()
            self._process_stop_on("/", True)
            self._process_stop_on("}", True)
            return self._unset(self.text[start : self.position], self.text[start : self.position])
        raise DockerfileError(f"unsupported modifier ({modifier}) in substitution")

    def _unset(self, written: str, kept: str, modifier: str = "", word: str = "") -> str:
        """The value of a variable that is not set (the environment here is always empty)."""
        if self.refuse_variables:
            raise UnresolvedVariable(written)
        if self.skip_unset_env:
            return kept
        if modifier.endswith("-"):
            return word
        if modifier.endswith("?"):
            raise DockerfileError(f"{written}: is not allowed to be unset")
        return ""


class _Words:
    """``wordsStruct``: splits the lexer's output into words (quoted/escaped spaces stay)."""

    def __init__(self) -> None:
        self.buffer = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, char: str) -> None:
        if char.isspace() and self.in_word:
            if self.buffer:
                self.words.append(self.buffer)
                self.buffer = ""
                self.in_word = False
        elif not char.isspace():
            self.add_raw_char(char)

    def add_raw_char(self, char: str) -> None:
        self.buffer += char
        self.in_word = True

    def add_string(self, text: str) -> None:
        for char in text:
            self.add_char(char)

    def add_raw_string(self, text: str) -> None:
        self.buffer += text
        self.in_word = True

    def finish(self) -> list[str]:
        if self.buffer:
            self.words.append(self.buffer)
            self.buffer = ""
            self.in_word = False
        return self.words
