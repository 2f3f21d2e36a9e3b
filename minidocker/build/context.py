"""The build context: the files a build may COPY, and ``.dockerignore``. Chapter 08.

::

    context = BuildContext.from_directory("app/")     a directory, read in place
    context = BuildContext.from_tar(stream, staging)  a tar stream (``docker build - < ctx.tar``, the API)
    context.resolve("src/main.c")                      the path on the host, never outside the context
    context.walk("src")                                (relative path, lstat) of what .dockerignore keeps
    IgnoreMatcher(["*.o", "!keep.o"]).matches("a.o")   Docker's pattern rules

``.dockerignore`` as the docker CLI reads it: one pattern a line, ``#`` comments,
``!`` makes an exception; patterns are cleaned and taken relative to the context root;
``*`` and ``?`` never cross a ``/``, ``**`` crosses any number; the last pattern that
matches a path (or one of its parent directories) decides. The Dockerfile and
``.dockerignore`` are always read by the builder, but COPY sees them only if kept.
See: https://docs.docker.com/build/concepts/context/#dockerignore-files,
moby/patternmatcher (patternmatcher.go).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from pathlib import Path

from minidocker.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

__all__ = ["BuildContext", "IgnoreMatcher", "read_dockerignore"]


def read_dockerignore(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, cleaned as the docker CLI cleans them."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            patterns.append(("!" if invert else "") + line)
    return [_clean(p) for p in patterns]


def _clean(pattern: str) -> str:
    """A pattern as Docker compares it: ``filepath.Clean``-ed, relative to the context root."""
    invert = pattern.startswith("!")
    text = posixpath.normpath(pattern[1:].strip() if invert else pattern)
    if len(text) > 1 and text.startswith("/"):
        text = text.lstrip("/") or "/"
    return ("!" if invert else "") + text


class _Pattern:
    def __init__(self, text: str) -> None:
        self.exclusion = text.startswith("!")
        self.text = text[1:] if self.exclusion else text
        self.dirs = self.text.split("/")
        self.regex = re.compile(_to_regex(self.text))

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def _to_regex(pattern: str) -> str:
    """A .dockerignore pattern as a regular expression (Docker's translation of filepath.Match)."""
    out, i, n = ["^"], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            out.append(re.escape(pattern[i]) if i < n else "\\\\")
            i += 1
        elif ch == "[":
            end = pattern.find("]", i)
            if end < 0:
                out.append("\\[")
                continue
            body = pattern[i:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
    return "".join(out) + "$"


class IgnoreMatcher:
    """Docker's .dockerignore matching: the last matching pattern wins, parents count."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [_Pattern(_clean(p)) for p in patterns]
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """True if ``path`` (relative, ``/``-separated) is ignored."""
        matched = False
        parent = posixpath.dirname(path)
        parent_dirs = parent.split("/") if parent else []
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit and parent_dirs and len(pattern.dirs) <= len(parent_dirs):
                hit = pattern.match("/".join(parent_dirs[:len(pattern.dirs)]))
            if hit:
                matched = not pattern.exclusion
        return matched


class BuildContext:
    """A build context on the host: a directory (read in place) and its .dockerignore."""

    def __init__(self, root: Path, patterns: list[str] | None = None) -> None:
        self.root = Path(root).resolve()
        if patterns is None:
            ignore = self.root / ".dockerignore"
            patterns = read_dockerignore(ignore.read_text(errors="replace")) if ignore.is_file() else []
        self.ignore = IgnoreMatcher(patterns)

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str]) -> BuildContext:
        if not os.path.isdir(path):
            raise NotFound(f"unable to prepare context: path {os.fspath(path)!r} not found")
        return cls(Path(path))

    @classmethod
    def from_tar(cls, stream: BinaryIO, directory: Path) -> BuildContext:
        """Unpack a context tar (plain or compressed) into ``directory``, refusing unsafe names."""
        from minidocker.image.compression import PeekReader, decompress_reader, detect
        from minidocker.storage.layer import apply_layer

        import tarfile
        import zlib

        directory.mkdir(parents=True, exist_ok=True)
        peek = PeekReader(stream)
        try:
            apply_layer(decompress_reader(peek, detect(peek.peek(4))), directory, overlay=False)
        except (tarfile.TarError, zlib.error, EOFError) as err:  # the client's bytes, not our fault: a 400
            raise InvalidArgument(f"failed to read the build context: not a tar archive ({err})") from None
        return cls(directory)

    def read_dockerfile(self, name: str = "Dockerfile") -> bytes:
        """The Dockerfile's bytes (read even when .dockerignore lists it)."""
        from minidocker.build.parser import MAX_DOCKERFILE

        path = self.resolve(name, check_ignored=False)
        try:
            size = os.stat(path).st_size
            if size > MAX_DOCKERFILE:
                raise InvalidArgument(f"failed to read {name}: {size} bytes, more than the limit of "
                                      f"{MAX_DOCKERFILE}")
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                           f"lstat {name}: no such file or directory",
                           hint="give the file with -f, or add a Dockerfile to the context") from None
        except IsADirectoryError:   # dockerfile=/ or a directory's name (a fuzzed request found it: a 500)
            raise InvalidArgument(f"failed to read {name}: it is a directory",
                                  hint="give the Dockerfile's path with -f") from None

    def clean(self, path: str) -> str:
        """A source path relative to the root, ``..`` resolved; refused if it leaves the context."""
        joined = posixpath.normpath(posixpath.join("/", path.replace(os.sep, "/")))
        if posixpath.normpath(path).startswith("../") or posixpath.normpath(path) == "..":
            raise InvalidArgument(f"forbidden path outside the build context: {path} ()")
        return joined.lstrip("/")

    def resolve(self, path: str, check_ignored: bool = True) -> Path:
        """The host path of ``path`` in the context, its symlinks followed but kept inside.

        Raises:
            InvalidArgument: the path, or a symlink on the way, leads outside the context.
            NotFound: it does not exist, or .dockerignore excludes it.
        """
        rel = self.clean(path)
        current = self.root
        parts = [p for p in rel.split("/") if p]
        if any(len(p.encode("utf-8", "surrogateescape")) > 255 for p in parts):  # NAME_MAX: a client's error
            raise InvalidArgument(f"file name too long in the build context: {path[:80]}...")
        hops = 0
        while parts:
            part = parts.pop(0)
            candidate = current / part
            if candidate.is_symlink():
                hops += 1
                if hops > 40:
                    raise InvalidArgument(f"too many levels of symbolic links in the build context: {path}")
                target = os.readlink(candidate)
                # an absolute target names a host path: inside the context only if it is under its root
                resolved = Path(os.path.normpath(target if target.startswith("/") else current / target))
                if resolved != self.root and self.root not in resolved.parents:
                    raise InvalidArgument(f"forbidden path outside the build context: {path} "
                                          f"(the symlink {candidate.relative_to(self.root)} points to "
                                          f"{target})")
                parts = list(resolved.relative_to(self.root).parts) + parts
                current = self.root
                continue
            current = candidate
        if check_ignored and rel and self.ignore.matches(str(current.relative_to(self.root))):
            raise NotFound(f"file not found in build context or excluded by .dockerignore: stat {path}: "
                           "file does not exist")
        if not os.path.lexists(current):
            raise NotFound(f"file not found in build context or excluded by .dockerignore: stat {path}: "
                           "file does not exist")
        return current

    def glob(self, pattern: str) -> list[str]:
        """The context paths a source with wildcards matches (Go's filepath.Match rules), sorted."""
        rel = self.clean(pattern)
        parts = rel.split("/")
        found = [""]
        for part in parts:
            nxt = []
            for base in found:
                directory = self.root / base if base else self.root
                if not directory.is_dir() or directory.is_symlink():
                    continue
                names = sorted(os.listdir(directory))
                regex = re.compile(_to_regex(part))
                for name in names:
                    if regex.match(name) if any(c in part for c in "*?[") else name == part:
                        nxt.append(f"{base}/{name}" if base else name)
            found = nxt
        return [f for f in found if not self.ignore.matches(f)]

    def walk(self, rel: str) -> Iterator[tuple[str, os.stat_result]]:
        """(path relative to ``rel``, lstat) of every entry kept below the directory ``rel``, sorted."""
        top = self.root / rel if rel else self.root

        def visit(sub: str) -> Iterator[tuple[str, os.stat_result]]:
            directory = top / sub if sub else top
            for name in sorted(os.listdir(directory)):
                child = f"{sub}/{name}" if sub else name
                context_rel = f"{rel}/{child}" if rel else child
                st = os.lstat(top / child)
                ignored = self.ignore.matches(context_rel)
                if not ignored:
                    yield child, st
                if stat.S_ISDIR(st.st_mode) and (not ignored or self.ignore.has_exclusions):
                    yield from visit(child)

        yield from visit("")
