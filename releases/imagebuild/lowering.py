"""Lower a Dockerfile written for today's frontend to what the engine's built-in frontend runs.

The engines we build on (Debian's dockerd 20.10) carry BuildKit 0.8, whose built-in Dockerfile
frontend is 1.2: it has ``RUN --mount`` and ``COPY --chmod``, but no here-documents (Dockerfile
1.4), and offline it cannot pull the frontend a ``# syntax=`` line names. :func:`lower_dockerfile`
rewrites what it can faithfully and refuses, before anything is built, what it cannot:

- ``RUN`` with heredocs: BuildKit runs ``SHELL + [script]`` where ``script`` is the heredoc alone
  (``RUN <<EOF``) or the command line followed by every body and its delimiter
  (``RUN cat <<'EOF' > /file``, the shell then honours quoting, ``<<-`` and expansion at run time).
  We write exactly that script to a file in the build context, bind-mount it (read-only) under
  ``/dev/pipes`` (a tmpfs: nothing lands in the layer) and run ``. /dev/pipes/run-N.sh`` in the
  same shell form, so the step's ``SHELL``, flags and mounts are kept and ``$0`` is unchanged.
  A single heredoc starting with ``#!`` is an executable (mode 0755) run directly, as BuildKit does.
- ``COPY``/``ADD`` with heredoc sources: each body becomes a file (mode 0644, BuildKit's) in the
  context, named like the heredoc so directory destinations get the same name; ``--chmod``/
  ``--chown`` stay. An unquoted delimiter expands ``$VAR`` at build time from the stage's
  environment, which we cannot know here: such a body with a variable reference is refused
  (escapes are resolved exactly as BuildKit does).
- ``# syntax=docker/dockerfile:1`` (any stable 1.x, optionally pinned by digest) is served by the
  built-in frontend plus this lowering; the line is dropped. Other frontends are refused.

Line numbers are kept: a lowered instruction takes its first line and blank lines fill the rest,
so the engine's messages point at the user's lines. Plain Python, no engine.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from releases.imagebuild.errors import DockerfileError
from releases.imagebuild.shellwords import ShellLexer, UnresolvedVariable
from releases.imagebuild.syntax import (
    HEREDOC_INSTRUCTIONS,
    Instruction,
    ParsedDockerfile,
    heredoc_words,
    parse_dockerfile,
    parse_heredoc_word,
)

LOWERED_DIR = ".release-registry-lowered"
MOUNT_DIR = "/dev/pipes"  # where BuildKit itself mounts a RUN heredoc; a tmpfs inside the container
FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755
HEREDOC_MIN_SYNTAX = (1, 4)

_SYNTAX_RE = re.compile(
    r"^(?:docker\.io/)?docker/dockerfile:(?P<version>1(?:\.(?P<minor>\d+)(?:\.\d+)?)?)(?:@sha256:[0-9a-f]{64})?$"
)
_SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_GENERATED_RE = re.compile(r"^[A-Za-z0-9._-]+/(?:Dockerfile|run-\d+\.sh|run-\d+/[^/]+|copy-\d+/[^/]+)$")
_SLUG_RE = re.compile(r"[^A-Za-z0-9._-]+")
_WHITESPACE_RE = re.compile(r"[\t\v\f\r ]+")
_GIT_URL_RE = re.compile(r"^(?:git://|git@|github\.com/|ssh://)|^https?://\S+\.git(?:#.*)?$")
_RUN_FLAGS = frozenset({"mount"})
_COPY_FLAGS = frozenset({"chown", "chmod", "from"})
_ADD_FLAGS = frozenset({"chown", "chmod"})
_HEALTHCHECK_FLAGS = frozenset({"interval", "timeout", "start-period", "retries"})
_MOUNT_KEYS_AFTER_1_2 = {"env": "1.10", "size": "1.3"}

_NO_LINK = "remove --link (the same files are copied; only the layer can no longer be rebased)"
_LATER_FLAGS: dict[tuple[str, str], tuple[str, str]] = {
    ("COPY", "link"): ("COPY --link", _NO_LINK),
    ("ADD", "link"): ("ADD --link", _NO_LINK),
    ("ADD", "checksum"): (
        "ADD --checksum",
        "download in a RUN step and verify with sha256sum, or commit the file to the repository",
    ),
    ("ADD", "keep-git-dir"): ("ADD --keep-git-dir", "clone the repository in a RUN step of a build stage"),
    ("ADD", "unpack"): ("ADD --unpack", "unpack the archive in a RUN step"),
    ("COPY", "parents"): ("COPY --parents", "copy each directory with its own COPY to its full destination path"),
    ("COPY", "exclude"): ("COPY --exclude", "list the files to leave out in .dockerignore, or copy the wanted ones"),
    ("ADD", "exclude"): ("ADD --exclude", "list the files to leave out in .dockerignore, or copy the wanted ones"),
    ("RUN", "network"): (
        "RUN --network",
        "remove the flag: the build network is chosen by the service (BUILD_NETWORK), the same for every step",
    ),
    ("RUN", "security"): (
        "RUN --security",
        "remove the flag: builds never run privileged steps (they need an entitlement we do not grant)",
    ),
    ("RUN", "device"): ("RUN --device", "remove the flag: builds get no host devices"),
}


@dataclass(frozen=True)
class Problem:
    """One thing the engine cannot honour: where, what, and what would support it."""

    line: int
    feature: str
    remedy: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.feature}: {self.remedy}"


class UnsupportedDockerfile(DockerfileError):
    """The Dockerfile uses syntax the engine's frontend cannot run and we cannot lower faithfully.

    ``problems`` lists every one, each with its line; the message names them all.
    """

    def __init__(self, problems: list[Problem], *, dockerfile_path: str = "Dockerfile"):
        self.problems = list(problems)
        self.dockerfile_path = dockerfile_path
        listed = "; ".join(
            f"{dockerfile_path}:{problem.line}: {problem.feature}: {problem.remedy}" for problem in self.problems
        )
        super().__init__(f"{dockerfile_path} uses syntax this engine's frontend (Dockerfile 1.2) cannot run: {listed}")


@dataclass
class LoweredDockerfile:
    """What to build instead: the Dockerfile text and the files it needs in the build context.

    ``files`` maps context-relative paths (all under ``.release-registry-lowered/``) to their bytes;
    ``modes`` gives each one's permission bits (0644, or 0755 for a shebang script), which COPY
    and the bind mount keep. :meth:`write_files` writes them, the lowered Dockerfile at
    ``build_file`` (context-relative: build with ``-f <context>/<build_file>``) and the
    ``.dockerignore`` that lets them through. ``notes`` are lines for the build log saying what was
    lowered and on which line.
    """

    dockerfile: str
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    modes: dict[str, int] = field(default_factory=dict)
    build_file: str = f"{LOWERED_DIR}/Dockerfile/Dockerfile"

    @property
    def changed(self) -> bool:
        return bool(self.files) or bool(self.notes)

    def write_files(self, context_dir: str | Path) -> list[Path]:
        """Write :attr:`files` into the build context with their modes, the lowered Dockerfile at
        :attr:`build_file` and, when the context has a ``.dockerignore``, the lines that keep the
        files in the context; return the paths of :attr:`files` and of the Dockerfile.

        Idempotent: files generated before (for another platform, or another Dockerfile in the same
        context) may be there and are rewritten. Refuses (:class:`DockerfileError`, nothing written)
        when the context holds a ``.release-registry-lowered`` of its own (the name is ours) or a path
        would leave the context.
        """
        context = Path(context_dir)
        root = context / LOWERED_DIR
        if root.exists() or root.is_symlink():
            foreign = root.is_symlink() or any(
                path.is_symlink() or (path.is_file() and not _GENERATED_RE.match(path.relative_to(root).as_posix()))
                for path in root.rglob("*")
            )
            if foreign:
                raise DockerfileError(
                    f"the build context already has {LOWERED_DIR}; that name is reserved for lowered "
                    "heredocs: rename it in the repository"
                )
        written: list[Path] = []
        for relative in sorted({*self.files, self.build_file}):
            pure = PurePosixPath(relative)
            if pure.is_absolute() or ".." in pure.parts or pure.parts[0] != LOWERED_DIR:
                raise DockerfileError(f"refusing to write {relative!r} outside {LOWERED_DIR}/")
        for relative, data in sorted({**self.files, self.build_file: self.dockerfile.encode()}.items()):
            target = context.joinpath(*PurePosixPath(relative).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(self.modes.get(relative, FILE_MODE))
            written.append(target)
        ignore = context / ".dockerignore"
        if ignore.is_file() and not ignore.is_symlink():
            kept = self.dockerignore(ignore.read_text())
            if kept is not None and kept != ignore.read_text():
                ignore.write_text(kept)
        for directory in {path.parent for path in written}:
            while directory != context:
                directory.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
                directory = directory.parent
        return written

    def dockerignore(self, existing: str | None) -> str | None:
        """The ``.dockerignore`` to build with: ``existing`` plus lines that keep our files in the context.

        ``None`` when nothing needs changing (no generated files, or no ``.dockerignore``).
        """
        if not self.files or existing is None or f"!{LOWERED_DIR}/**" in existing.splitlines():
            return None
        suffix = f"\n# release registry: lowered heredocs\n!{LOWERED_DIR}\n!{LOWERED_DIR}/**\n"
        return existing.rstrip("\n") + "\n" + suffix


def lower_dockerfile(text: str, *, dockerfile_path: str = "Dockerfile") -> LoweredDockerfile:
    """Rewrite ``text`` for the Dockerfile 1.2 frontend, or refuse it naming every problem.

    Raises :class:`UnsupportedDockerfile` (``.problems``) for syntax that cannot be honoured, and
    for a Dockerfile that cannot be parsed (an unterminated heredoc, say).
    """
    try:
        parsed = parse_dockerfile(text)
    except DockerfileError as exc:
        line = _line_of(str(exc))
        raise UnsupportedDockerfile(
            [Problem(line, "parse error", str(exc).split(": ", 1)[-1])], dockerfile_path=dockerfile_path
        ) from exc
    lowering = _Lowering(parsed, dockerfile_path)
    return lowering.run()


def _line_of(message: str) -> int:
    match = re.match(r"line (\d+):", message)
    return int(match.group(1)) if match else 0


class _Lowering:
    def __init__(self, parsed: ParsedDockerfile, dockerfile_path: str):
        self.parsed = parsed
        self.dockerfile_path = dockerfile_path
        slug = _SLUG_RE.sub("_", dockerfile_path.strip("/")).strip("._") or "Dockerfile"
        self.prefix = f"{LOWERED_DIR}/{slug}"
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, int] = {}
        self.out = list(parsed.lines)
        self.heredocs_allowed = True

    def run(self) -> LoweredDockerfile:
        self._directives()
        for instruction in self.parsed.instructions:
            self._check_flags(instruction)
            if instruction.heredocs:
                self._lower_heredocs(instruction)
            elif instruction.keyword not in HEREDOC_INSTRUCTIONS and not instruction.is_json:
                self._refuse_stray_heredoc(instruction)
            if instruction.keyword == "ADD":
                self._check_add_sources(instruction)
        if self.problems:
            self.problems.sort(key=lambda problem: problem.line)
            raise UnsupportedDockerfile(self.problems, dockerfile_path=self.dockerfile_path)
        return LoweredDockerfile(dockerfile="".join(self.out), files=self.files, notes=self.notes, modes=self.modes)

    def _note(self, line: int, message: str) -> None:
        self.notes.append(f"{self.dockerfile_path}:{line}: {message}")

    def _refuse(self, line: int, feature: str, remedy: str) -> None:
        self.problems.append(Problem(line, feature, remedy))

    # --- directives -------------------------------------------------------------------------
    def _directives(self) -> None:
        directives = self.parsed.directives
        if not directives:
            return
        syntax = self.parsed.directive("syntax")
        if syntax is not None:
            match = _SYNTAX_RE.match(syntax.value.split()[0])
            if match is None:
                self._refuse(
                    syntax.line,
                    f"# syntax={syntax.value}",
                    "this engine cannot pull frontends; use docker/dockerfile:1 (any stable 1.x) or remove the line",
                )
            else:
                minor = match.group("minor")
                if minor is not None and (1, int(minor)) < HEREDOC_MIN_SYNTAX:
                    self.heredocs_allowed = False
                self._note(
                    syntax.line,
                    f"# syntax={syntax.value} served by the engine's built-in frontend (Dockerfile 1.2) "
                    "with heredocs lowered; the line is dropped",
                )
        # Only escape survives, on the first line; the block keeps its length so lines stay put.
        escape = self.parsed.directive("escape")
        last = max(directive.line for directive in directives)
        for index in range(last):
            self.out[index] = "\n"
        if escape is not None:
            self.out[0] = f"# escape={escape.value}\n"
        check = self.parsed.directive("check")
        if check is not None:
            self._note(check.line, f"# check={check.value} dropped (linting is not part of Dockerfile 1.2)")

    # --- flags ------------------------------------------------------------------------------
    def _check_flags(self, instruction: Instruction) -> None:
        keyword = instruction.keyword
        names = instruction.flag_names()
        allowed = {"RUN": _RUN_FLAGS, "COPY": _COPY_FLAGS, "ADD": _ADD_FLAGS, "HEALTHCHECK": _HEALTHCHECK_FLAGS}
        if keyword == "ONBUILD" and instruction.onbuild_keyword:
            return
        if keyword not in allowed:
            return
        for name in names:
            if (keyword, name) in _LATER_FLAGS:
                feature, remedy = _LATER_FLAGS[(keyword, name)]
                self._refuse(instruction.line, feature, remedy)
            elif name not in allowed[keyword]:
                self._refuse(
                    instruction.line,
                    f"{keyword} --{name}",
                    f"Dockerfile 1.2 knows only {', '.join('--' + flag for flag in sorted(allowed[keyword]))} "
                    f"on {keyword}; remove the flag",
                )
        if keyword == "RUN":
            for value in instruction.flag_values("mount"):
                for option in value.split(","):
                    key = option.partition("=")[0].strip().lower()
                    if key in _MOUNT_KEYS_AFTER_1_2:
                        self._refuse(
                            instruction.line,
                            f"RUN --mount ... {key}= (Dockerfile {_MOUNT_KEYS_AFTER_1_2[key]})",
                            "secrets are files at /run/secrets/<id> (or target=): read the value from there"
                            if key == "env"
                            else "remove the option",
                        )

    def _check_add_sources(self, instruction: Instruction) -> None:
        if instruction.is_json:
            return
        for word in _WHITESPACE_RE.split(instruction.args)[:-1]:
            if _GIT_URL_RE.match(word):
                self._refuse(
                    instruction.line,
                    f"ADD {word} (a git repository, Dockerfile 1.6)",
                    "clone it in a RUN step (git clone) or add the files to the repository",
                )

    def _refuse_stray_heredoc(self, instruction: Instruction) -> None:
        if "<<" not in instruction.original:
            return
        words = heredoc_words(instruction.original)
        if not words:
            return
        if instruction.keyword == "ONBUILD":
            self._refuse(
                instruction.line,
                f"ONBUILD {instruction.onbuild_keyword} with a heredoc",
                "the images built FROM this one would need the heredoc in their own context; "
                "write the trigger without a heredoc",
            )
        else:
            self._refuse(
                instruction.line,
                f"heredoc <<{words[0].name} in {instruction.keyword}",
                "heredocs work only in RUN, COPY and ADD; the lines below it would be read as instructions",
            )

    # --- heredocs ---------------------------------------------------------------------------
    def _lower_heredocs(self, instruction: Instruction) -> None:
        if instruction.keyword == "ONBUILD":
            self._refuse_stray_heredoc(instruction)
            return
        if not self.heredocs_allowed:
            syntax = self.parsed.directive("syntax")
            self._refuse(
                instruction.line,
                f"heredoc in {instruction.keyword} under # syntax={syntax.value if syntax else ''}",
                "heredocs are Dockerfile 1.4: change the syntax line to docker/dockerfile:1 (we lower them)",
            )
            return
        lower = self._lower_run if instruction.keyword == "RUN" else self._lower_copy
        replacement = lower(instruction)
        if replacement is None:
            return
        self.out[instruction.line - 1] = replacement + "\n"
        for index in range(instruction.line, instruction.end_line):
            self.out[index] = "\n"

    def _flags_prefix(self, instruction: Instruction) -> str:
        return f"{instruction.flags_text} " if instruction.flags_text else ""

    def _lower_run(self, instruction: Instruction) -> str | None:
        line = instruction.line
        command = instruction.args
        single = parse_heredoc_word(command)
        names = ", ".join(f"<<{'-' if h.chomp else ''}{h.name}" for h in instruction.heredocs)
        if single is not None:
            data = instruction.heredocs[0].chomped_content
            if data.startswith("#!"):
                name = instruction.heredocs[0].name
                if not _SAFE_NAME_RE.match(name):
                    self._refuse(
                        line,
                        f"RUN heredoc script named {name!r}",
                        "name the heredoc with letters, digits, '.', '_' or '-' (e.g. <<EOF)",
                    )
                    return None
                directory = f"{self.prefix}/run-{line}"
                path = f"{directory}/{name}"
                self._add_file(path, data, EXECUTABLE_MODE)
                mount = f"--mount=type=bind,source={directory},target={MOUNT_DIR}"
                self._note(
                    line,
                    f"RUN {names}: the #! script is {path} (mode 0755), bind-mounted at "
                    f"{MOUNT_DIR}/{name} and run there, as BuildKit 1.4 does",
                )
                return f"RUN {self._flags_prefix(instruction)}{mount} {MOUNT_DIR}/{name}"
            script = data
        else:
            pieces = [command]
            for heredoc in instruction.heredocs:
                pieces.append("\n" + heredoc.content + heredoc.name)
            script = "".join(pieces)
        path = f"{self.prefix}/run-{line}.sh"
        target = f"{MOUNT_DIR}/run-{line}.sh"
        self._add_file(path, script, FILE_MODE)
        mount = f"--mount=type=bind,source={path},target={target}"
        self._note(
            line,
            f"RUN {names}: the step's script ({len(script.encode())} bytes) is {path}, bind-mounted at "
            f"{target} and sourced by the step's shell",
        )
        return f"RUN {self._flags_prefix(instruction)}{mount} . {target}"

    def _lower_copy(self, instruction: Instruction) -> str | None:
        line = instruction.line
        keyword = instruction.keyword
        if instruction.flag_values("from"):
            self._refuse(
                line,
                f"{keyword} --from with a heredoc source",
                "write the heredoc in its own COPY without --from",
            )
            return None
        words = _WHITESPACE_RE.split(instruction.args)
        if len(words) < 2:
            self._refuse(line, f"{keyword} heredoc without a destination", f"write {keyword} <<EOF /path")
            return None
        sources, destination = words[:-1], words[-1]
        if parse_heredoc_word(destination) is not None:
            self._refuse(line, f"{keyword} with a heredoc as its destination", "put the heredoc before the path")
            return None
        by_name = {heredoc.name: heredoc for heredoc in instruction.heredocs}
        used: set[str] = set()
        plain_sources = 0
        rewritten: list[str] = []
        failed = False
        for word in sources:
            declared = parse_heredoc_word(word)
            if declared is None:
                plain_sources += 1
                rewritten.append(word)
                continue
            heredoc = by_name.get(declared.name)
            if heredoc is None:
                self._refuse(line, f"{keyword} source {word}", "no heredoc body of that name follows the instruction")
                failed = True
                continue
            if not _SAFE_NAME_RE.match(heredoc.name):
                self._refuse(
                    line,
                    f"{keyword} heredoc named {heredoc.name!r}",
                    "name the heredoc with letters, digits, '.', '_' or '-': it becomes the file's name",
                )
                failed = True
                continue
            if heredoc.name in used:
                self._refuse(line, f"{keyword} heredoc {heredoc.name} used twice", "give each heredoc its own name")
                failed = True
                continue
            used.add(heredoc.name)
            data = heredoc.chomped_content
            if heredoc.expand:
                try:
                    data = ShellLexer(skip_process_quotes=True, refuse_variables=True).word(data)
                except UnresolvedVariable as unresolved:
                    self._refuse(
                        line,
                        f"{keyword} <<{heredoc.name} expands {unresolved.reference} at build time",
                        f"quote the delimiter (<<'{heredoc.name}') to copy the text as written, or write "
                        "the file in a RUN step where the shell expands it",
                    )
                    failed = True
                    continue
                except DockerfileError as exc:
                    self._refuse(line, f"{keyword} <<{heredoc.name}", str(exc))
                    failed = True
                    continue
            path = f"{self.prefix}/copy-{line}/{heredoc.name}"
            self._add_file(path, data, FILE_MODE)
            rewritten.append(path)
            self._note(line, f"{keyword} <<{heredoc.name}: the file is {path} ({len(data.encode())} bytes, mode 0644)")
        unused = [heredoc.name for heredoc in instruction.heredocs if heredoc.name not in used]
        if unused and not failed:
            self._refuse(
                line,
                f"{keyword} heredoc {', '.join(unused)} declared but not a source",
                f"write the heredoc as a source word: {keyword} <<EOF /path",
            )
            failed = True
        if keyword == "ADD" and plain_sources:
            self._refuse(
                line,
                "ADD with heredoc and other sources",
                "split it: COPY <<EOF /path for the heredoc, ADD for the rest",
            )
            failed = True
        if failed:
            return None
        lowered_keyword = "COPY"  # ADD of a heredoc never unpacks or downloads: COPY is the same step
        return f"{lowered_keyword} {self._flags_prefix(instruction)}{' '.join(rewritten + [destination])}"

    def _add_file(self, path: str, text: str, mode: int) -> None:
        self.files[path] = text.encode()
        self.modes[path] = mode
