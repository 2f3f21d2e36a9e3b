"""Chapter 08 exercises: a Dockerfile builder's pure parts by hand.

Read exercises/ch08/README.md first; grade with ``make grade CH=08`` (or ``TASK=8_2``).

    logical_lines(text)                  task 8.1  physical lines -> (start line, instruction line), Docker's rules
    expand(word, env, escape)            task 8.2  Docker's shell-word expansion of one word
    ignored(patterns, path)              task 8.3  is a path excluded by these .dockerignore patterns?
    copy_checksum(path, name)            task 8.4  the checksum a COPY of this file or directory writes in its history

See: https://docs.docker.com/reference/dockerfile/ (format, environment replacement, .dockerignore),
sh(1) "Parameter Expansion", moby/buildkit frontend/dockerfile/parser and shell/lex.go, pkg/tarsum.
"""

from __future__ import annotations

import hashlib  # noqa: F401
import os  # noqa: F401
import re  # noqa: F401
import stat  # noqa: F401
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
    # TODO(task 8.1): join continued lines, drop comments, honour # escape=
    raise NotImplementedError("task 8.1: join continued lines, drop comments, honour # escape=")


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
    # TODO(task 8.2): scan the word: quotes, escapes, $NAME, ${NAME}, ${NAME:-w}, ${NAME:+w}
    raise NotImplementedError("task 8.2: scan the word: quotes, escapes, $NAME, ${NAME}, ${NAME:-w}, ${NAME:+w}")


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
    # TODO(task 8.3): clean, translate to regexes, last match wins, parents count
    raise NotImplementedError("task 8.3: clean, translate to regexes, last match wins, parents count")


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
    # TODO(task 8.4): tarsum v1 header fields without mtime, then the bytes; dirs hash their entries
    raise NotImplementedError("task 8.4: tarsum v1 header fields without mtime, then the bytes; dirs hash their entries")
