"""Graded tests of chapter 08: a Dockerfile builder's pure parts by hand.

Run: ``make grade CH=08`` (all tasks) or ``make grade CH=08 TASK=8_2`` (one task).
``tasks`` is your exercises/ch08/tasks.py (the reference with ``--solutions``).
minidocker's builder is the oracle: its parser (:mod:`minidocker.build.parser`), its expansion
(:mod:`minidocker.build.shell`), its ``.dockerignore`` matcher and its cache checksums, which
tests/test_ch08_build.py checks against a real dockerd.
"""

from __future__ import annotations

import os

import pytest

from minidocker.build.cache import dir_hash, file_hash
from minidocker.build.context import IgnoreMatcher
from minidocker.build.parser import parse
from minidocker.build.shell import process_word

pytestmark = [pytest.mark.ch08]


# --- task 8.1: logical_lines ---------------------------------------------------------------------

DOCKERFILES = [
    "FROM busybox\nRUN echo hi\n",
    "FROM a\nRUN x \\\n  # c\n  y\n",
    "\n\n  FROM a  \n# comment\nENV A=1 \\\n\n    B=2\nCMD [\"sh\"]",
    "FROM a\nRUN one \\   \n  two \\\n",
    "# escape=`\nFROM a\nRUN dir C:\\ `\n    /w\nCOPY a\\b /c\n",
    "# syntax=x\n# escape=`\nFROM a\nRUN a `\n b\n",
    "FROM a\n# escape=`\nRUN a `\n b\n",
    "FROM a\r\nRUN a \\\r\n b\r\n",
]


@pytest.mark.task8_1
@pytest.mark.parametrize("text", DOCKERFILES, ids=range(len(DOCKERFILES)))
def test_logical_lines_agree_with_dockers_parser(tasks, text):
    expected = [(node.start_line, node.original.strip()) for node in parse(text).nodes]
    assert tasks.logical_lines(text) == expected


# --- task 8.2: expand ----------------------------------------------------------------------------

ENV = {"A": "a", "EMPTY": "", "SP": "x  y", "B_2": "b2"}
WORDS = ["$A", "${A}", "$A$A", "${A}b", "$Ab", "$NOPE", "${NOPE:-dflt}", "${EMPTY:-dflt}", "${A:-dflt}",
         "${A:+alt}", "${EMPTY:+alt}", "${NOPE:-$A/x}", "'$A'", '"$A"', '"\\$A"', "\\$A", '"a\\b"', "a\\ b",
         "$", "a$", "${SP}", "end\\", "$B_2-x", '"it\'s"', "pre${A:+<$A>}post"]


@pytest.mark.task8_2
@pytest.mark.parametrize("word", WORDS)
def test_expand_agrees_with_dockers_rules(tasks, word):
    assert tasks.expand(word, ENV) == process_word(word, ENV)


@pytest.mark.task8_2
def test_expand_with_the_backtick_escape(tasks):
    assert tasks.expand("C:\\dir` x`$A", ENV, "`") == process_word("C:\\dir` x`$A", ENV, "`") == "C:\\dir x$A"


@pytest.mark.task8_2
@pytest.mark.parametrize("word", ["'open", '"open', "${A:-x"])
def test_expand_refuses_unterminated_words(tasks, word):
    with pytest.raises(ValueError):
        tasks.expand(word, ENV)


# --- task 8.3: ignored ---------------------------------------------------------------------------

CASES = [
    (["*.o"], "a.o"), (["*.o"], "d/a.o"), (["**/*.o"], "d/e/a.o"), (["**/*.o"], "a.o"), (["d"], "d/e/f"),
    (["d/*"], "d"), (["*.o", "!keep.o"], "keep.o"), (["!keep.o", "*.o"], "keep.o"), (["/abs"], "abs"),
    (["./x/../y"], "y"), (["a?c"], "abc"), (["a?c"], "a/c"), (["[a-c]x"], "bx"), (["**"], "any/thing"),
    (["d", "!d/keep"], "d/keep"), (["d", "!d/keep"], "d/other"), (["docs/**/*.md"], "docs/a/b/c.md"),
    (["docs/**/*.md"], "docs/c.md"), (["*"], "dir/file"), (["dir/"], "dir/file"),
]


@pytest.mark.task8_3
@pytest.mark.parametrize("patterns, path", CASES, ids=[f"{p}-{f}" for p, f in CASES])
def test_ignored_agrees_with_dockers_matcher(tasks, patterns, path):
    assert tasks.ignored(patterns, path) is IgnoreMatcher(patterns).matches(path)


# --- task 8.4: copy_checksum ---------------------------------------------------------------------


@pytest.mark.task8_4
def test_copy_checksum_of_a_file(tasks, tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("hello\n")
    os.chmod(path, 0o644)
    # the value dockerd 20.10's legacy builder wrote for `COPY a.txt /x/` of this file
    assert tasks.copy_checksum(path, "a.txt") == \
        "file:00ec16333078d287782d462baefc8bb9eb0231dc3aefba3ca3e2f7e5cf0cadda"
    os.utime(path, (1, 1))
    assert tasks.copy_checksum(path, "a.txt") == "file:" + file_hash(path, "a.txt"), "no mtime in it"
    os.chmod(path, 0o600)
    assert tasks.copy_checksum(path, "a.txt") == "file:" + file_hash(path, "a.txt")


@pytest.mark.task8_4
def test_copy_checksum_of_a_directory(tasks, tmp_path):
    top = tmp_path / "d"
    (top / "e").mkdir(parents=True)
    (top / "e" / "f").write_text("deep\n")
    (top / "top").write_text("top\n")
    os.symlink("top", top / "link")
    for path in (top, top / "e"):
        os.chmod(path, 0o755)
    for path in (top / "e" / "f", top / "top"):
        os.chmod(path, 0o644)
    os.symlink("nowhere", top / "dangling")
    # the symlink counts as what it points to; the dangling one not at all (as dockerd hashes them)
    entries = [file_hash(top, "d")] + [file_hash(top / rel, f"d/{rel}") for rel in ("e", "e/f", "top", "top")]
    assert tasks.copy_checksum(top, "d") == "dir:" + dir_hash(entries)
