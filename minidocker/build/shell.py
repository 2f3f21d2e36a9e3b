"""Shell-word expansion of a Dockerfile: ``$VAR``, ``${VAR:-word}``, quotes, escapes. Chapter 08.

The builder, not a shell, expands variables in ENV, ARG, LABEL, COPY, ADD, WORKDIR,
USER, EXPOSE, VOLUME, STOPSIGNAL and FROM. The rules are a small subset of sh(1),
those of Docker's ``shell.Lex``::

    process_word("${A:-x}/b", {"A": ""})     'x/b'    one word; quotes removed, blanks kept
    process_words("a 'b c' $L", {"L": "d e"}) ['a', 'b c', 'd', 'e']   split like the shell

* ``'...'``: everything literal, no escape inside;
* ``"..."``: ``$`` still expands; the escape character escapes only ``"``, ``$`` and itself;
* the escape character (``\\`` or the ``# escape=`` one) outside quotes keeps the next
  character literally; at the very end it is dropped;
* ``$NAME``, ``${NAME}``, ``${NAME:-word}`` (word if unset or empty), ``${NAME:+word}``
  (word if set and non-empty), ``${NAME:?message}`` (an error if unset or empty);
  an unset variable is the empty string; ``$`` followed by nothing nameable stays ``$``;
* exec-form (JSON) RUN, CMD and ENTRYPOINT are never expanded (no shell there).

See: https://docs.docker.com/reference/dockerfile/#environment-replacement, sh(1)
"Parameter Expansion", moby/buildkit frontend/dockerfile/shell/lex.go.
"""

from __future__ import annotations

from minidocker.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ExpansionError", "env_map", "process_word", "process_words"]

_SPECIAL = "@*#?-$!0"


class ExpansionError(InvalidArgument):
    """A word that cannot be expanded: an unclosed quote, a bad ``${...}``."""


def env_map(env: list[str]) -> dict[str, str]:
    """``["K=V", ...]`` as a dict; the first definition of a name wins, as in Docker's lookup."""
    result: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        result.setdefault(key, value)
    return result


def process_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand ``word`` as one word: variables replaced, quotes and escapes removed, blanks kept."""
    return _Lexer(word, env, escape).run()[0]


def process_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Expand ``word`` and split it into words as the shell does (expanded values split too)."""
    return _Lexer(word, env, escape).run()[1]


class _Words:
    """The words of a line being expanded; quoted text never splits a word."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word, self.in_word = "", False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word, self.in_word = "", False
        return self.words


class _Lexer:
    def __init__(self, source: str, env: Mapping[str, str], escape: str) -> None:
        self.source, self.env, self.escape = source, env, escape
        self.pos = 0

    def peek(self) -> str:
        return self.source[self.pos] if self.pos < len(self.source) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def run(self) -> tuple[str, list[str]]:
        try:
            return self.until("")
        except ExpansionError as err:
            raise ExpansionError(f"failed to process {self.source!r}: {err}") from None

    def until(self, stop: str) -> tuple[str, list[str]]:
        """Expand up to ``stop`` (consumed) or the end; returns the text and its words."""
        result, words = [], _Words()
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.result()
            if ch in "'\"$":
                if ch == "'":
                    text = self.single_quote()
                else:
                    text = self.double_quote() if ch == '"' else self.dollar()
                result.append(text)
                words.add_string(text) if ch == "$" else words.add_raw(text)
                continue
            ch = self.next()
            if ch == self.escape:
                ch = self.next()
                if not ch:
                    break            # an escape at the very end is dropped
                words.add_raw(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def single_quote(self) -> str:
        self.next()
        end = self.source.find("'", self.pos)
        if end < 0:
            raise ExpansionError("unexpected end of statement while looking for matching single-quote")
        text, self.pos = self.source[self.pos:end], end + 1
        return text

    def double_quote(self) -> str:
        self.next()
        result = []
        while True:
            ch = self.peek()
            if not ch:
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(result)
            if ch == "$":
                result.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                following = self.peek()
                if not following:
                    continue                  # an escape before the end is dropped
                if following in ('"', "$", self.escape):
                    ch = self.next()
            result.append(ch)

    def name(self) -> str:
        ch = self.peek()
        if ch.isdigit():
            start = self.pos
            while self.peek().isdigit():
                self.next()
            return self.source[start:self.pos]
        if ch and ch in _SPECIAL:
            return self.next()
        start = self.pos
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.next()
        return self.source[start:self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.env.get(name, "") if name else "$"
        self.next()
        if not self.peek():
            raise ExpansionError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        if ch != ":":
            raise ExpansionError("missing ':' in substitution")
        modifier = self.next()
        try:
            word, _ = self.until("}")
        except ExpansionError:
            raise ExpansionError("syntax error: missing '}'") from None
        value = self.env.get(name, "")
        if modifier == "-":
            return value or word
        if modifier == "+":
            return word if value else ""
        if modifier == "?":
            if not value:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")
