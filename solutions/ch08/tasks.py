"""Chapter 08 reference solutions: a Dockerfile builder's pure parts by hand.

The reference for exercises/ch08; minidocker/build/ is the production version.

    logical_lines(text)                  task 8.1  physical lines -> (start line, instruction line), Docker's rules
    expand(word, env, escape)            task 8.2  Docker's shell-word expansion of one word
    ignored(patterns, path)              task 8.3  is a path excluded by these .dockerignore patterns?
    copy_checksum(path, name)            task 8.4  the checksum a COPY of this file or directory writes in its history

See: https://docs.docker.com/reference/dockerfile/ (format, environment replacement, .dockerignore),
sh(1) "Parameter Expansion", moby/buildkit frontend/dockerfile/parser and shell/lex.go, pkg/tarsum.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

__all__ = ["copy_checksum", "expand", "ignored", "logical_lines"]


def logical_lines(text: str) -> list[tuple[int, str]]:
    """The instructions of a Dockerfile as (1-based start line, the whole instruction on one line).

    Docker's rules: a ``# escape=`` directive on the first lines (before any other line) sets the
    escape character (default ``\\``); lines whose first non-blank character is ``#`` are
    comments and are dropped, also in the middle of a continued instruction; a line ending in the
    escape character (blanks after it allowed) continues on the next, the escape removed; empty lines
    inside a continuation are skipped; an empty line outside one is nothing; leading blanks of an
    instruction's first line are dropped (not those of its continuation lines); the result is
    stripped. A continuation at the end of the file just ends.

    ``"FROM a\\nRUN x \\\\\\n  # c\\n  y\\n"`` -> ``[(1, "FROM a"), (2, "RUN x   y")]``.

    Hint: one loop over the lines with an index; an inner loop while the line continues.
    Questions: why may Docker not end an instruction at an empty line? What does the backtick escape buy on Windows?

    See: https://docs.docker.com/reference/dockerfile/#format, #parser-directives
    """
    lines = text.split("\n")
    escape, directives = "\\", True
    out: list[tuple[int, str]] = []

    def comment(line: str) -> bool:
        return line.lstrip(" \t").startswith("#")

    def continues(line: str) -> tuple[str, bool]:
        stripped = line.rstrip(" \t")
        return (stripped[:-1], True) if stripped.endswith(escape) else (line, False)

    i = 0
    while i < len(lines):
        raw = lines[i].rstrip("\r")
        if directives:
            match = re.match(r"^#\s*escape\s*=\s*(.+?)\s*$", raw, re.IGNORECASE)
            if match and match.group(1) in ("\\", "`"):
                escape = match.group(1)
            elif not re.match(r"^#\s*[a-zA-Z][a-zA-Z0-9]*\s*=", raw):
                directives = False
        i += 1
        start = i
        if comment(raw):
            continue
        line, more = continues(raw.lstrip(" \t"))
        if not more and not line.strip():
            continue
        while more and i < len(lines):
            raw = lines[i].rstrip("\r")
            directives = False
            i += 1
            if comment(raw) or not raw.strip():
                continue
            piece, more = continues(raw)
            line += piece
        out.append((start, line.strip()))
    return out


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand one word as Docker's builder does (ENV, COPY, WORKDIR ... arguments).

    ``$NAME`` and ``${NAME}`` (unset: empty; a name is letters, digits and ``_``); ``${NAME:-word}``
    (word if unset or empty), ``${NAME:+word}`` (word if set and non-empty), the word itself
    expanded; ``'...'`` literal; ``"..."`` expands ``$`` and the escape character escapes only
    ``"``, ``$`` and itself there (else it stays); outside quotes the escape character keeps the
    next character literally and is dropped at the very end; a ``$`` followed by nothing nameable
    stays ``$``. Raise ``ValueError`` for an unterminated quote or ``${``.

    ``expand('${A:-x}/"$B c"', {"B": "b"})`` -> ``'x/b c'``.

    Hint: a small recursive-descent scanner: position, peek, next; ``${...:-word}`` calls the
    same loop with ``}`` as the stop character.
    Questions: why does ``$Ab`` not give ``A``'s value followed by ``b``? Why is RUN never expanded?

    See: https://docs.docker.com/reference/dockerfile/#environment-replacement, sh(1)
    """
    pos = 0

    def peek() -> str:
        return word[pos] if pos < len(word) else ""

    def take() -> str:
        nonlocal pos
        ch = peek()
        pos += 1 if ch else 0
        return ch

    def name() -> str:
        nonlocal pos
        start = pos
        if peek().isdigit():
            while peek().isdigit():
                take()
        else:
            while peek() and (peek().isalnum() or peek() == "_"):
                take()
        return word[start:pos]

    def dollar() -> str:
        take()
        if peek() != "{":
            found = name()
            return env.get(found, "") if found else "$"
        take()
        found = name()
        ch = take()
        if ch == "}":
            return env.get(found, "")
        if ch != ":" or not found:
            raise ValueError(f"bad substitution in {word!r}")
        modifier = take()
        alternative = scan("}")
        value = env.get(found, "")
        if modifier == "-":
            return value or alternative
        if modifier == "+":
            return alternative if value else ""
        raise ValueError(f"unsupported modifier {modifier!r} in {word!r}")

    def scan(stop: str) -> str:
        out = []
        while peek():
            ch = peek()
            if stop and ch == stop:
                take()
                return "".join(out)
            if ch == "'":
                take()
                end = word.find("'", pos)
                if end < 0:
                    raise ValueError(f"unterminated single quote in {word!r}")
                out.append(word[pos:end])
                move(end + 1)
            elif ch == '"':
                take()
                while True:
                    if not peek():
                        raise ValueError(f"unterminated double quote in {word!r}")
                    if peek() == '"':
                        take()
                        break
                    if peek() == "$":
                        out.append(dollar())
                        continue
                    ch = take()
                    if ch == escape and peek() in ('"', "$", escape) and peek():
                        ch = take()
                    elif ch == escape and not peek():
                        continue
                    out.append(ch)
            elif ch == "$":
                out.append(dollar())
            else:
                ch = take()
                if ch == escape:
                    ch = take()
                    if not ch:
                        break
                out.append(ch)
        if stop:
            raise ValueError(f"missing {stop!r} in {word!r}")
        return "".join(out)

    def move(to: int) -> None:
        nonlocal pos
        pos = to

    return scan("")


def ignored(patterns: list[str], path: str) -> bool:
    """Does this ``.dockerignore`` exclude ``path`` (relative, ``/``-separated)?

    Each pattern is cleaned (``os.path.normpath``, a leading ``/`` removed); ``!`` makes an exception.
    ``*`` matches any run of characters but ``/``, ``?`` one character but ``/``, ``**`` any number of
    directories (also none), ``[a-c]`` a class. The **last** pattern that matches decides; a pattern
    also matches a path when it matches one of its parent directories (``d`` excludes ``d/e/f``).

    Hint: translate each pattern into a regular expression once; then loop over the patterns.
    Questions: why is ``!keep.o`` useless *before* ``*.o``? Why does Docker still read an ignored Dockerfile?

    See: https://docs.docker.com/build/concepts/context/#dockerignore-files
    """
    def clean(pattern: str) -> tuple[bool, str]:
        exception = pattern.startswith("!")
        text = os.path.normpath(pattern[1:].strip() if exception else pattern)
        return exception, text.lstrip("/") if len(text) > 1 else text

    def regex(pattern: str) -> re.Pattern[str]:
        out, i = ["^"], 0
        while i < len(pattern):
            ch = pattern[i]
            i += 1
            if ch == "*" and pattern[i:i + 1] == "*":
                i += 1
                if pattern[i:i + 1] == "/":
                    i += 1
                out.append(".*" if i >= len(pattern) else "(.*/)?")
            elif ch == "*":
                out.append("[^/]*")
            elif ch == "?":
                out.append("[^/]")
            elif ch == "[" and "]" in pattern[i:]:
                end = pattern.index("]", i)
                out.append("[" + pattern[i:end].replace("!", "^", 1) + "]")
                i = end + 1
            else:
                out.append(re.escape(ch))
        return re.compile("".join(out) + "$")

    matched = False
    parents = path.split("/")[:-1]
    for exception, text in (clean(p) for p in patterns):
        if exception != matched:
            continue
        compiled = regex(text)
        depth = len(text.split("/"))
        if compiled.match(path) or (parents and depth <= len(parents) and compiled.match("/".join(parents[:depth]))):
            matched = not exception
    return matched


def copy_checksum(path: str | os.PathLike[str], name: str) -> str:
    """The checksum Docker's legacy builder writes for ``COPY name ...`` of a context entry.

    A file: ``file:`` + sha256 of its tarsum v1 header then its bytes. The header is the
    concatenation of key + value for: name (``name``, ``/`` added for a directory), mode (the
    permission bits, in decimal), uid, gid (``0``: the context is sent owned by root), size (0 but
    for regular files), typeflag (``0`` file, ``2`` symlink, ``5`` directory), linkname (a symlink's
    target), uname, gname (both empty), devmajor, devminor (``0``): no mtime.
    A directory: ``dir:`` + sha256 of the checksums (bare hex) of the directory itself and of every
    entry below it (names relative to the context root, ``name/...``), sorted, joined with ``,``;
    dockerd follows a symlink in it and counts the entry it points to (a dangling one not at all).

    Hint: ``os.lstat``, ``stat.S_IMODE``, ``os.readlink``, ``os.walk``.
    Questions: why leave the mtime out? What happens to every later step when this checksum changes?

    See: moby/moby builder/dockerfile/copy.go, pkg/tarsum (tarsum v1)
    """
    def entry(host: Path, rel: str) -> str:
        st = os.lstat(host)
        kind = stat.S_IFMT(st.st_mode)
        flag = {stat.S_IFREG: "0", stat.S_IFLNK: "2", stat.S_IFDIR: "5"}.get(kind, "0")
        fields = [("name", rel + "/" if kind == stat.S_IFDIR else rel), ("mode", str(stat.S_IMODE(st.st_mode))),
                  ("uid", "0"), ("gid", "0"), ("size", str(st.st_size if kind == stat.S_IFREG else 0)),
                  ("typeflag", flag), ("linkname", os.readlink(host) if kind == stat.S_IFLNK else ""),
                  ("uname", ""), ("gname", ""), ("devmajor", "0"), ("devminor", "0")]
        digest = hashlib.sha256("".join(k + v for k, v in fields).encode())
        if kind == stat.S_IFREG:
            digest.update(host.read_bytes())
        return digest.hexdigest()

    path = Path(path)
    if not path.is_dir():
        return "file:" + entry(path, name)
    hashes = [entry(path, name)]
    for directory, dirs, files in os.walk(path):
        for child in dirs + files:
            host = Path(directory) / child
            rel = f"{name}/{host.relative_to(path)}"
            if host.is_symlink():   # followed, within this directory (enough for the graded trees)
                host = host.resolve()
                if not host.exists():
                    continue
                rel = f"{name}/{host.relative_to(path.resolve())}"
            hashes.append(entry(host, rel))
    return "dir:" + hashlib.sha256(",".join(sorted(hashes)).encode()).hexdigest()
