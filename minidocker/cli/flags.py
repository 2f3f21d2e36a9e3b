"""A small command-line parser that reads flags the way the docker CLI does.

Why not argparse: importing and building it costs about 10 ms, more than half of what
the kernel needs to start a container, on a command that is benchmarked against runc.
And Docker's rules are simple to state (they are those of Go's pflag, which the docker
CLI uses):

- ``--name value``, ``--name=value``; short flags ``-e K=V``, ``-eK=V``, combined ``-it``;
- a repeatable flag (``-e``) collects every value; a boolean takes no value (``--rm``,
  or ``--rm=false``);
- for ``run`` and ``exec`` flag parsing stops at the first positional argument: in
  ``minidocker run busybox ls -l``, ``-l`` belongs to ``ls``; ``--`` stops it anywhere;
- ``--help`` always asks for help; a usage error exits with 125, like docker's.

A command line is described by data (:class:`Command`, :class:`Option`,
:class:`Argument`) and :func:`parse` turns argv into ``(command, values)``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["Argument", "Command", "Option", "UsageError", "Values", "format_help", "parse"]

_TRUE = ("", "1", "t", "true", "yes")
_FALSE = ("0", "f", "false", "no")


class Values:
    """What :func:`parse` read: one attribute per option ``dest`` and argument ``name``.

    argparse's ``Namespace``; ``types.SimpleNamespace`` would do too, but importing
    ``types`` costs 0.3 ms of each command's start.
    """

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return "Values(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Values) and vars(self) == vars(other)


class UsageError(Exception):
    """A command line that does not parse; ``command`` is where the help is."""

    def __init__(self, message: str, command: Command) -> None:
        super().__init__(message)
        self.command = command


class Option:
    """A flag. ``kind`` is "bool", "value" (one string) or "list" (repeatable)."""

    def __init__(self, names: str, help: str, kind: str = "bool", metavar: str = "",
                 dest: str = "", default: object = None) -> None:
        self.names = names.split()  # "-e --env"
        self.help = help
        self.kind = kind
        self.metavar = metavar or ("" if kind == "bool" else "VALUE")
        self.dest = dest or self.names[-1].lstrip("-").replace("-", "_")
        self.default = default if default is not None else {"bool": False, "list": []}.get(kind)


class Argument:
    """A positional argument. ``count``: "one", "optional", "many" (one or more) or "rest"."""

    def __init__(self, name: str, count: str = "one") -> None:
        self.name = name
        self.count = count


class Command:
    """A command: its options, its positional arguments, the action it runs, its subcommands.

    ``interspersed=False`` stops flag parsing at the first positional argument.
    """

    def __init__(self, name: str, help: str, action: Callable | None = None,
                 options: Sequence[Option] = (), arguments: Sequence[Argument] = (),
                 subcommands: Sequence[Command] = (), interspersed: bool = True,
                 parent: Command | None = None) -> None:
        self.name = name
        self.help = help
        self.action = action
        self.options = list(options)
        self.arguments = list(arguments)
        self.subcommands = {c.name: c for c in subcommands}
        self.interspersed = interspersed
        self.parent = parent
        for sub in subcommands:
            sub.parent = self

    @property
    def path(self) -> str:
        return f"{self.parent.path} {self.name}" if self.parent else self.name

    def option(self, name: str) -> Option | None:
        for option in self.options:
            if name in option.names:
                return option
        return None


def parse(root: Command, argv: Sequence[str]) -> tuple[Command, Values]:
    """Find the (sub)command named by ``argv`` and read its flags and arguments.

    Returns the command and its values, one attribute per option ``dest`` and argument
    ``name``; ``values.help`` is True when ``--help`` was given.
    Raises:
        UsageError: an unknown flag or command, a missing value or argument.
    """
    command, position = root, 0
    while position < len(argv) and argv[position] in command.subcommands:
        command = command.subcommands[argv[position]]
        position += 1
    values = Values(help=False, **{o.dest: _copy(o.default) for o in command.options})
    positionals = _read_flags(command, list(argv[position:]), values)
    if values.help:
        return command, values
    if command.subcommands and not command.action:
        if positionals:
            raise UsageError(f"unknown command {positionals[0]!r} for {command.path!r}", command)
        return command, values
    _assign_arguments(command, positionals, values)
    return command, values


def format_help(command: Command) -> str:
    """The ``--help`` text: usage, description, options, commands."""
    usage = f"Usage:  {command.path}"
    if command.options:
        usage += " [OPTIONS]"
    if command.subcommands:
        usage += " COMMAND"
    for argument in command.arguments:
        name = argument.name.upper()
        usage += {"one": f" {name}", "optional": f" [{name}]", "many": f" {name} [{name}...]",
                  "rest": f" [{name}] [ARG...]"}[argument.count]
    lines = [usage, "", command.help]
    if command.subcommands:
        lines += ["", "Commands:"]
        width = max(len(name) for name in command.subcommands) + 2
        lines += [f"  {name:<{width}}{sub.help}" for name, sub in command.subcommands.items()]
    options = [*command.options, Option("--help", "print usage")]
    lines += ["", "Options:"]
    shown = [(", ".join(o.names) + (f" {o.metavar}" if o.metavar else ""), o.help) for o in options]
    width = max(len(left) for left, _ in shown) + 2
    lines += [f"  {left:<{width}}{text}" for left, text in shown]
    if command.subcommands:
        lines += ["", f"Run '{command.path} COMMAND --help' for more information on a command."]
    return "\n".join(lines)


def _read_flags(command: Command, args: list[str], values: Values) -> list[str]:
    positionals: list[str] = []
    while args:
        arg = args.pop(0)
        if arg == "--":
            return positionals + args
        if arg == "--help" or (arg == "-h" and command.option("-h") is None):
            values.help = True
            return positionals
        if arg.startswith("--"):
            name, has_value, value = arg.partition("=")
            _set(command, name, value if has_value else None, args, values)
        elif arg.startswith("-") and arg != "-":
            _read_short_cluster(command, arg, args, values)
        else:
            positionals.append(arg)
            if not command.interspersed:
                return positionals + args
    return positionals


def _read_short_cluster(command: Command, arg: str, args: list[str], values: Values) -> None:
    """``-it`` is ``-i -t``; ``-eA=1`` is ``-e A=1``: a value-taking flag eats the rest."""
    for index in range(1, len(arg)):
        name = f"-{arg[index]}"
        option = command.option(name)
        if option is not None and option.kind != "bool":
            rest = arg[index + 1:]
            _set(command, name, rest.removeprefix("=") if rest else None, args, values)
            return
        _set(command, name, None, args, values)


def _set(command: Command, name: str, value: str | None, args: list[str], values: Values) -> None:
    option = command.option(name)
    if option is None:
        raise UsageError(f"unknown flag: {name}", command)
    if option.kind == "bool":
        if value is not None and value.lower() not in _TRUE + _FALSE:
            raise UsageError(f"invalid argument {value!r} for {name}: expected true or false", command)
        setattr(values, option.dest, value is None or value.lower() in _TRUE)
        return
    if value is None:
        if not args:
            raise UsageError(f"flag needs an argument: {name}", command)
        value = args.pop(0)
    if option.kind == "list":
        getattr(values, option.dest).append(value)
    else:
        setattr(values, option.dest, value)


def _assign_arguments(command: Command, positionals: list[str], values: Values) -> None:
    for argument in command.arguments:
        if argument.count in ("rest", "many"):
            if argument.count == "many" and not positionals:
                raise UsageError(f"{command.path!r} requires at least 1 argument: {argument.name.upper()}",
                                 command)
            setattr(values, argument.name, positionals)
            positionals = []
        elif positionals:
            setattr(values, argument.name, positionals.pop(0))
        elif argument.count == "optional":
            setattr(values, argument.name, None)
        else:
            raise UsageError(f"{command.path!r} requires at least 1 argument: {argument.name.upper()}",
                             command)
    if positionals:
        raise UsageError(f"{command.path!r} takes no more arguments, got {' '.join(positionals)!r}", command)


def _copy(default: object) -> object:
    return list(default) if isinstance(default, list) else default
