"""Chapter 01: the command line reads flags the way the docker CLI does (minidocker/cli/flags.py)."""

from __future__ import annotations

import pytest

from minidocker.cli.flags import UsageError, format_help, parse
from minidocker.cli.parsers import build_commands

pytestmark = pytest.mark.ch01


def _run(*argv: str):
    command, values = parse(build_commands(), ["run", *argv])
    assert command.name == "run"
    return values


def test_short_flags_combine_and_take_values_attached_or_separate():
    values = _run("-it", "-eA=1", "-e", "B=2", "--env=C=3", "-w/tmp", "busybox")
    assert (values.interactive, values.tty) == (True, True)
    assert values.env == ["A=1", "B=2", "C=3"]
    assert values.workdir == "/tmp"


def test_flags_after_the_image_belong_to_the_command():
    values = _run("--rm", "busybox", "ls", "-l", "--rm")
    assert values.image == "busybox"
    assert values.command == ["ls", "-l", "--rm"]
    assert values.remove is True


def test_double_dash_ends_the_flags():
    values = _run("--", "busybox", "--not-a-flag")
    assert (values.image, values.command) == ("busybox", ["--not-a-flag"])


def test_boolean_flags_accept_an_explicit_value():
    assert _run("--rm=false", "busybox").remove is False
    assert _run("--rm=true", "busybox").remove is True


def test_h_is_the_hostname_for_run_and_help_elsewhere():
    assert _run("-h", "box", "busybox").hostname == "box"
    command, values = parse(build_commands(), ["ps", "-h"])
    assert values.help and command.name == "ps"


def test_interspersed_flags_for_commands_without_a_rest_argument():
    command, values = parse(build_commands(), ["rm", "a", "-f", "b"])
    assert values.containers == ["a", "b"] and values.force


def test_subcommands_nest():
    command, values = parse(build_commands(), ["system", "prune", "-f"])
    assert command.path == "minidocker system prune" and values.force


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--bogus", "busybox"], "unknown flag: --bogus"),
        (["run", "-z", "busybox"], "unknown flag: -z"),
        (["run", "-e"], "flag needs an argument: -e"),
        (["run"], "requires at least 1 argument: IMAGE"),
        (["ps", "extra"], "takes no more arguments"),
        (["system", "nope"], "unknown command 'nope'"),
    ],
)
def test_usage_errors_name_the_problem(argv, message):
    with pytest.raises(UsageError, match=message):
        parse(build_commands(), argv)


def test_help_lists_every_option_of_the_command():
    command, _ = parse(build_commands(), ["run", "--help"])
    text = format_help(command)
    assert text.startswith("Usage:  minidocker run [OPTIONS] IMAGE [COMMAND] [ARG...]")
    for flag in ("--rm", "-i, --interactive", "-e, --env KEY=VALUE", "--init", "--read-only"):
        assert flag in text
