"""Dockerfile instructions: parsed nodes checked and split into build stages. Chapter 08.

::

    stages, meta_args = plan(parsed)      Stage("build", base "busybox", [Instruction ...]), ARGs before FROM
    Instruction.name / .args / .flags     one instruction, its flags checked against what it accepts

What each instruction does to the image config is the builder's business
(:mod:`minidocker.build.builder`); this module only checks the shape Docker checks
(argument counts, flags, stage names) and reports it with the file and line.
See: https://docs.docker.com/reference/dockerfile/, moby/buildkit frontend/dockerfile/instructions/parse.go.
"""

from __future__ import annotations

import re

from minidocker.build.parser import INSTRUCTIONS, DockerfileError, Node, Parsed
from minidocker.record import Record

__all__ = ["FLAGS", "Instruction", "Stage", "go_quote", "plan"]

# The flags each instruction accepts (name -> takes a value); BuildKit's --mount/--network/--security
# on RUN and --link on COPY/ADD are accepted as BuildKit spells them.
FLAGS: dict[str, dict[str, bool]] = {
    "from": {"platform": True},
    "run": {"mount": True, "network": True, "security": True},
    "copy": {"from": True, "chown": True, "chmod": True, "link": False, "parents": False, "exclude": True},
    "add": {"chown": True, "chmod": True, "link": False, "checksum": True, "keep-git-dir": False},
    "healthcheck": {"interval": True, "timeout": True, "start-period": True, "start-interval": True,
                    "retries": True},
}
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")


class Instruction(Record):
    """One instruction, checked: upper-case name, argument words, flags as a dict, its node."""

    FIELDS = ("name", "args", "flags", "node")

    def __init__(self, name: str, args: list[str], flags: dict[str, str | bool], node: Node) -> None:
        self.name, self.args, self.flags, self.node = name, args, flags, node

    @property
    def line(self) -> int:
        return self.node.start_line


class Stage(Record):
    """A build stage: from ``FROM base [AS name]`` to the next FROM."""

    FIELDS = ("index", "name", "base", "platform", "instructions", "node")

    def __init__(self, index: int, name: str | None, base: str, platform: str | None, node: Node) -> None:
        self.index, self.name, self.base, self.platform, self.node = index, name, base, platform, node
        self.instructions: list[Instruction] = []


def go_quote(items: list[str]) -> str:
    """A list as Go's ``fmt.Sprintf("%q", list)`` writes it: ``["sh" "-c" "echo hi"]`` (Docker's history)."""
    def quote(text: str) -> str:
        out = []
        for ch in text:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ch == "\r":
                out.append("\\r")
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\x{ord(ch):02x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'

    return "[" + " ".join(quote(item) for item in items) + "]"


def parse_flags(node: Node, file: str) -> dict[str, str | bool]:
    """``--name=value`` words checked against the instruction's flags (Docker's BFlags messages)."""
    allowed = FLAGS.get(node.instruction, {})
    flags: dict[str, str | bool] = {}
    for word in node.flags:
        if not word.startswith("--"):
            raise DockerfileError(f'Arg "{word}" must start with "--"', file, node.start_line)
        name, has_value, value = word[2:].partition("=")
        if name not in allowed:
            raise DockerfileError(f"Unknown flag: {name}", file, node.start_line)
        if name in flags and name != "mount":
            raise DockerfileError(f"Duplicate flag specified: {name}", file, node.start_line)
        if allowed[name]:
            if not has_value:
                raise DockerfileError(f"Missing a value on flag: {name}", file, node.start_line)
            if name == "mount":
                flags[name] = f"{flags[name]}\n{value}" if name in flags else value
            else:
                flags[name] = value
        else:
            if has_value and value.lower() not in ("true", "false"):
                raise DockerfileError(f'expecting boolean value for flag {name}, not: {value}', file,
                                      node.start_line)
            flags[name] = value.lower() != "false"
    return flags


def _check(node: Node, file: str) -> None:
    """The argument counts Docker checks at parse time."""
    name, args, line = node.instruction.upper(), node.args, node.start_line
    if node.instruction not in INSTRUCTIONS:
        raise DockerfileError(f"unknown instruction: {name}", file, line,
                              hint="instructions are " + ", ".join(i.upper() for i in INSTRUCTIONS))
    if node.instruction in ("run", "cmd", "entrypoint"):
        if node.instruction == "run" and not args and not node.json:
            raise DockerfileError("RUN requires at least one argument", file, line)
        return
    if node.instruction == "shell":
        if not node.json:
            raise DockerfileError("SHELL requires the arguments to be in JSON form", file, line)
        if not args:
            raise DockerfileError("SHELL requires at least one argument", file, line)
        return
    if node.instruction in ("copy", "add"):
        if len(args) < 2 and not (node.heredocs and args):
            raise DockerfileError(f"{name} requires at least two arguments, but only one was provided. "
                                  "Destination could not be determined", file, line)
        return
    if node.instruction in ("workdir", "user", "maintainer", "stopsignal"):
        if len(args) != 1:
            raise DockerfileError(f"{name} requires exactly one argument", file, line)
        return
    if node.instruction in ("expose", "volume", "label", "env", "arg", "onbuild", "healthcheck") and not args:
        raise DockerfileError(f"{name} requires at least one argument", file, line)
    if node.instruction == "volume" and any(not v.strip() for v in args):
        raise DockerfileError("VOLUME specified can not be an empty string", file, line)


def plan(parsed: Parsed) -> tuple[list[Stage], list[Instruction]]:
    """The stages of a parsed Dockerfile and the ARGs before its first FROM.

    Raises:
        DockerfileError: an unknown instruction, a bad count of arguments or flags, an
            instruction before any FROM, a bad or repeated stage name.
    """
    file = parsed.file
    stages: list[Stage] = []
    meta: list[Instruction] = []
    names: set[str] = set()
    for node in parsed.nodes:
        _check(node, file)
        if node.sub is not None:
            _check(node.sub, file)
            parse_flags(node.sub, file)
        instruction = Instruction(node.instruction.upper(), list(node.args), parse_flags(node, file), node)
        if node.instruction == "from":
            stages.append(_stage(instruction, len(stages), names, file))
        elif not stages:
            if node.instruction != "arg":
                raise DockerfileError("no build stage in current context", file, node.start_line,
                                      hint="a Dockerfile starts with FROM (only ARG may come before it)")
            meta.append(instruction)
        else:
            stages[-1].instructions.append(instruction)
    if not stages:
        raise DockerfileError("file with no instructions", file,
                              hint="a Dockerfile needs at least a FROM line")
    return stages, meta


def _stage(instruction: Instruction, index: int, names: set[str], file: str) -> Stage:
    args, line = instruction.args, instruction.line
    if len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != "as"):
        raise DockerfileError("FROM requires either one or three arguments", file, line)
    name = None
    if len(args) == 3:
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise DockerfileError(f"invalid name for build stage: {args[2]!r}, name can't start with a "
                                  "number or contain symbols", file, line)
        if name in names:
            raise DockerfileError(f"duplicate name {args[2]!r}", file, line)
        names.add(name)
    platform = instruction.flags.get("platform")
    return Stage(index, name, args[0], platform if isinstance(platform, str) else None, instruction.node)
