"""The Dockerfile parser: lines -> instructions with their arguments. Chapter 08.

::

    result = parse(text, name="Dockerfile")   a Parsed: directives, nodes, warnings
    node = result.nodes[0]                    Node(instruction="from", args=["busybox"], line 1)

The grammar, as Docker's parser reads a file (moby/buildkit frontend/dockerfile/parser):

1. **Parser directives** are comments of the form ``# name=value`` at the very top:
   ``syntax``, ``escape`` (``\\`` or `````) and ``check`` (recorded, ignored). The first
   line that is not one ends them; a directive given twice is an error.
2. **Comments** are lines whose first non-blank character is ``#``; they are dropped,
   also in the middle of a continued instruction. Empty lines end nothing either.
3. **Continuation**: a line ending in the escape character (blanks after it allowed)
   continues on the next line; a continuation at the end of the file is accepted.
4. **Instruction and flags**: the first word, case-insensitive; then ``--name[=value]``
   words (``--from=build``); the rest is the arguments.
5. **Arguments** by instruction: JSON (exec form) for RUN, CMD, ENTRYPOINT, SHELL when the
   rest is a valid JSON array of strings, else the plain string (shell form); COPY, ADD,
   VOLUME: JSON, else blank-separated words; ENV, LABEL: ``key=value`` pairs (quotes kept,
   the shell rules of :mod:`.shell` remove them later) or the old ``key value``; ARG:
   ``name[=default]`` words; ONBUILD: an instruction parsed the same way.
6. **Heredocs** (RUN, COPY, ADD in shell form): each ``<<WORD``, ``<<-WORD`` (leading tabs
   stripped) or ``<<"WORD"`` (quoted: no expansion) on the line takes the lines that
   follow, up to a line that is WORD.

Errors carry the file and line: ``Dockerfile:3: unknown instruction: FOO`` (the message
in Docker's wording).
See: https://docs.docker.com/reference/dockerfile/ (format, parser directives, heredocs).
"""

from __future__ import annotations

import json
import re

from minidocker.errors import InvalidArgument
from minidocker.record import Record

__all__ = ["DIRECTIVES", "INSTRUCTIONS", "DockerfileError", "Heredoc", "Node", "Parsed", "parse",
           "parse_heredoc", "split_flags"]

MAX_DOCKERFILE = 1 << 20   # bytes; a larger file is refused before parsing
DIRECTIVES = ("syntax", "escape", "check")
INSTRUCTIONS = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
                "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir")
HEREDOC_INSTRUCTIONS = ("add", "copy", "run")

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_LEADING_TABS = re.compile(r"(?m)^\t+")
_NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"


class DockerfileError(InvalidArgument):
    """A Dockerfile that cannot be parsed or built: the file, the line, Docker's message."""

    def __init__(self, message: str, file: str = "Dockerfile", line: int | None = None,
                 hint: str | None = None) -> None:
        self.file, self.line, self.reason = file, line, message
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}", hint)


class Heredoc(Record):
    """One here-document: its delimiter, its lines, whether variables expand in it."""

    FIELDS = ("name", "content", "expand", "chomp", "fd")

    def __init__(self, name: str, content: str = "", expand: bool = True, chomp: bool = False,
                 fd: int = 0) -> None:
        self.name, self.content, self.expand, self.chomp, self.fd = name, content, expand, chomp, fd


class Node(Record):
    """One instruction as parsed (before any expansion).

    Attributes:
        instruction: lower case (``run``); unknown names are kept and refused later.
        args: the argument words (a key, value, key, value list for ENV and LABEL).
        flags: the ``--name=value`` words, as written.
        json: True for the exec (JSON array) form.
        original: the whole instruction as one line (continuations joined), for ``Step 1/5 : ...``.
        start_line, end_line: 1-based lines in the file.
        heredocs: the here-documents that followed the line.
        sub: for ONBUILD, the instruction it records.
    """

    FIELDS = ("instruction", "args", "flags", "json", "original", "start_line", "end_line", "heredocs", "sub")

    def __init__(self, instruction: str, args: list[str], flags: list[str] | None = None, json: bool = False,
                 original: str = "", start_line: int = 0, end_line: int = 0,
                 heredocs: list[Heredoc] | None = None, sub: Node | None = None) -> None:
        self.instruction, self.args, self.flags, self.json = instruction, args, flags or [], json
        self.original, self.start_line, self.end_line = original, start_line, end_line
        self.heredocs = heredocs or []
        self.sub = sub


class Parsed(Record):
    """A parsed Dockerfile: its directives, its instructions, the parser's warnings."""

    FIELDS = ("directives", "nodes", "warnings", "escape", "file")

    def __init__(self, directives: dict[str, str], nodes: list[Node], warnings: list[str], escape: str,
                 file: str) -> None:
        self.directives, self.nodes, self.warnings = directives, nodes, warnings
        self.escape, self.file = escape, file


class _Directives:
    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[str, str] = {}
        self.done = False
        self.escape = "\\"

    def look_at(self, line: str, number: int) -> None:
        if self.done:
            return
        match = _DIRECTIVE.match(line)
        if not match or match.group(1).lower() not in DIRECTIVES:
            self.done = True
            return
        key, value = match.group(1).lower(), match.group(2)
        if key in self.values:
            raise DockerfileError(f"only one {key} parser directive can be used", self.file, number)
        if key == "escape":
            if value not in ("\\", "`"):
                raise DockerfileError(f"invalid escape token '{value}' does not match ` or \\", self.file,
                                      number)
            self.escape = value
        self.values[key] = value


def _is_comment(line: str) -> bool:
    return line.lstrip(" \t\v\f\r").startswith("#")


def parse(text: str | bytes, name: str = "Dockerfile") -> Parsed:
    """Parse a Dockerfile into its instructions. Raises DockerfileError (with file and line)."""
    if isinstance(text, bytes):
        if len(text) > MAX_DOCKERFILE:
            raise DockerfileError(f"the Dockerfile is {len(text)} bytes, more than the limit of "
                                  f"{MAX_DOCKERFILE}", name)
        text = text.decode("utf-8", errors="surrogateescape")
    elif len(text) > MAX_DOCKERFILE:
        raise DockerfileError(f"the Dockerfile is {len(text)} characters, more than the limit of "
                              f"{MAX_DOCKERFILE}", name)
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    directives = _Directives(name)
    nodes: list[Node] = []
    warnings: list[str] = []
    index = 0

    def read(strip_left: bool) -> str:
        """The next line without its newline (and CR), left-trimmed if asked; comments as ''."""
        raw = lines[index].rstrip("\r")
        directives.look_at(raw, index + 1)
        if strip_left:
            raw = raw.lstrip(" \t\v\f\r")
        return "" if _is_comment(raw) else raw

    while index < len(lines):
        line = read(True)
        index += 1
        start = index
        line, ended = _trim_continuation(line, directives.escape)
        if ended and line == "":
            continue
        empty_continuation = False
        while not ended and index < len(lines):
            raw = lines[index]
            following = read(False)
            index += 1
            if _is_comment(raw):
                continue
            if not following.strip(" \t\v\f\r"):
                empty_continuation = True
                continue
            following, ended = _trim_continuation(following, directives.escape)
            line += following
        if empty_continuation:
            warnings.append(f"Empty continuation line found in:\n    {line}")
        node = _node_from_line(line, directives.escape, name, start)
        target = node.sub if node.instruction == "onbuild" and node.sub is not None else node
        if target.instruction in HEREDOC_INSTRUCTIONS and not target.json:
            for doc in _heredocs_of(line):
                body: list[str] = []
                while True:
                    if index >= len(lines):
                        raise DockerfileError("unterminated heredoc", name, start)
                    raw = lines[index]
                    index += 1
                    candidate = raw.rstrip("\r")
                    if (candidate.lstrip("\t") if doc.chomp else candidate) == doc.name:
                        break
                    body.append(raw + "\n")
                doc.content = "".join(body)
                if doc.chomp:
                    doc.content = _LEADING_TABS.sub("", doc.content)
                target.heredocs.append(doc)
        node.end_line = index
        nodes.append(node)
    return Parsed(directives.values, nodes, warnings, directives.escape, name)


def _trim_continuation(line: str, escape: str) -> tuple[str, bool]:
    """The line without a final escape character (and blanks after it); True when it ends here."""
    stripped = line.rstrip(" \t")
    if stripped.endswith(escape):
        return stripped[:-1], False
    return line, True


def split_flags(rest: str) -> tuple[str, list[str]]:
    """The leading ``--flag[=value]`` words of an argument string, and what follows them.

    Quotes group a value (``--chown="a b"``), a backslash escapes one character; ``--``
    alone ends the flags.
    """
    words: list[str] = []
    pos, n = 0, len(rest)
    while True:
        while pos < n and rest[pos].isspace():
            pos += 1
        if pos >= n:
            return "", words
        if not rest.startswith("--", pos):
            return rest[pos:], words
        word, quote = "", ""
        while pos < n:
            ch = rest[pos]
            if quote:
                if ch == quote:
                    quote = ""
                elif ch == "\\" and pos + 1 < n:
                    pos += 1
                    word += rest[pos]
                elif ch != "\\":
                    word += ch
            elif ch.isspace():
                break
            elif ch in "'\"":
                quote = ch
            elif ch == "\\":
                if pos + 1 < n:
                    pos += 1
                    word += rest[pos]
            else:
                word += ch
            pos += 1
        if word == "--":
            return rest[pos:].strip(), words
        words.append(word)


def _node_from_line(line: str, escape: str, file: str, number: int) -> Node:
    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    instruction = parts[0].lower()
    rest, flags = split_flags(parts[1]) if len(parts) == 2 else ("", [])
    rest = rest.strip()
    try:
        args, is_json, sub = _arguments(instruction, rest, escape, file, number)
    except DockerfileError:
        raise
    except InvalidArgument as err:
        raise DockerfileError(str(err), file, number) from None
    return Node(instruction, args, flags, is_json, line, number, number, sub=sub)


def _arguments(instruction: str, rest: str, escape: str, file: str, number: int
               ) -> tuple[list[str], bool, Node | None]:
    if instruction in ("run", "cmd", "entrypoint", "shell"):
        parsed = _json_array(rest)
        return (parsed, True, None) if parsed is not None else ([rest] if rest else [], False, None)
    if instruction in ("copy", "add", "volume"):
        parsed = _json_array(rest)
        return (parsed, True, None) if parsed is not None else (_split_blanks(rest), False, None)
    if instruction in ("env", "label"):
        return _name_values(rest, instruction.upper(), escape), False, None
    if instruction == "arg":
        return parse_words(rest, escape), False, None
    if instruction in ("from", "expose"):
        return _split_blanks(rest), False, None
    if instruction == "healthcheck":
        words = _split_blanks(rest)
        if words and words[0].upper() == "NONE":
            return words, False, None
        kind, _, command = rest.partition(" ")
        parsed = _json_array(command.strip())
        return ([kind, *parsed], True, None) if parsed is not None else ([kind, command.strip()], False, None)
    if instruction == "onbuild":
        if not rest:
            raise DockerfileError("ONBUILD requires at least one argument", file, number)
        sub = _node_from_line(rest, escape, file, number)
        if sub.instruction in ("onbuild", "from", "maintainer"):
            raise DockerfileError(f"{sub.instruction.upper()} isn't allowed as an ONBUILD trigger", file,
                                  number)
        return [rest], False, sub
    return ([rest] if rest else []), False, None   # MAINTAINER, USER, WORKDIR, STOPSIGNAL and unknown ones


def _json_array(rest: str) -> list[str] | None:
    """The strings of a JSON array, or None when ``rest`` is not one (the shell form applies)."""
    text = rest.lstrip()
    if not text.startswith("["):
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text)   # like Go's Decoder: what follows is ignored
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise InvalidArgument(_NOT_STRINGS)
    return value


def _split_blanks(rest: str) -> list[str]:
    return [w for w in _WHITESPACE.split(rest) if w] if rest else []


def parse_words(rest: str, escape: str = "\\") -> list[str]:
    """Blank-separated words; quotes and escaped characters are kept in the word, only grouping."""
    words, word, quote, blank_ok = [], "", "", False
    pos, n = 0, len(rest)
    while pos < n:
        ch = rest[pos]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if pos + 1 == n:
                    break
                word += ch
                pos += 1
                ch = rest[pos]
            word += ch
        elif ch.isspace():
            if blank_ok or word:
                words.append(word)
            word, blank_ok = "", False
        else:
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == escape:
                if pos + 1 == n:
                    break
                word += ch
                pos += 1
                ch = rest[pos]
            word += ch
        pos += 1
    if blank_ok or word:
        words.append(word)
    return words


def _name_values(rest: str, key: str, escape: str) -> list[str]:
    """ENV and LABEL: ``a=1 b="x y"`` pairs, or the old ``name value`` form."""
    words = parse_words(rest, escape)
    if not words:
        raise InvalidArgument(f"{key} requires at least one argument")
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise InvalidArgument(f"{key} must have two arguments")
        return [parts[0], parts[1]]
    pairs: list[str] = []
    for word in words:
        if "=" not in word:
            raise InvalidArgument(f"Syntax error - can't find = in {json.dumps(word)}. Must be of the form: "
                                  "name=value")
        name, _, value = word.partition("=")
        pairs += [name, value]
    return pairs


def parse_heredoc(word: str) -> Heredoc | None:
    """A ``<<WORD`` / ``<<-WORD`` / ``<<'WORD'`` token as a Heredoc, or None if it is not one."""
    from minidocker.build.shell import process_words

    match = _HEREDOC.match(word)
    if not match or not match.group(3):
        return None
    rest = match.group(3)
    words = process_words(rest, {})
    if len(words) != 1:
        return None
    quoted = any(q in rest for q in "'\"")
    return Heredoc(words[0], expand=not quoted, chomp=match.group(2) == "-", fd=int(match.group(1) or 0))


def _heredocs_of(line: str) -> list[Heredoc]:
    """Every heredoc token (a whole word, quotes kept) on an instruction line."""
    return [doc for word in parse_words(line) if "<<" in word and (doc := parse_heredoc(word)) is not None]
