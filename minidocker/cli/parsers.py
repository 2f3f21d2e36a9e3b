"""The argument parsers, apart from the actions they call (commands.py)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["build_parser"]

TYPE_CHECKING = False  # typing costs 3 ms of start-up; annotations are strings here anyway
if TYPE_CHECKING:
    from typing import NoReturn


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with 125 like docker's and name the command."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"minidocker: {message}\nSee '{self.prog} --help'.\n")
        sys.exit(125)


_NOT_IMAGE_COMMANDS = ("run", "exec", "ps", "rm", "doctor", "system")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; the image commands are built only when ``argv`` may need them (5 ms less for ``run``)."""
    from minidocker.cli import commands

    parser = _Parser(prog="minidocker", description="A container runtime built to learn how Docker works.")
    parser.add_argument("--version", action="version", version=f"minidocker {_version()}")
    sub = parser.add_subparsers(metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run a command in a new container", add_help=False,
                         description="Run a command in a new container (direct mode: no daemon).")
    run.add_argument("--help", action="help", help="show this help message and exit")
    run.add_argument("--rm", dest="remove", action="store_true", help="remove the container when it exits")
    run.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    run.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    run.add_argument("--name", help="name the container")
    run.add_argument("-h", "--hostname", help="container hostname (default: the short ID)")
    run.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE",
                     help="set an environment variable (repeatable)")
    run.add_argument("-w", "--workdir", help="working directory inside the container")
    run.add_argument("-u", "--user", help="UID[:GID] to run as")
    run.add_argument("--entrypoint", help="override the image's ENTRYPOINT")
    run.add_argument("--init", action="store_true", help="run an init as PID 1 that reaps and forwards signals")
    run.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    run.add_argument("image", help="image name, e.g. busybox")
    run.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")
    run.set_defaults(action=commands.run)

    exec_ = sub.add_parser("exec", help="run a command in a running container")
    exec_.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    exec_.add_argument("-w", "--workdir", default="/")
    exec_.add_argument("container")
    exec_.add_argument("command", nargs=argparse.REMAINDER)
    exec_.set_defaults(action=commands.exec_)

    ps = sub.add_parser("ps", help="list containers")
    ps.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    ps.add_argument("-q", "--quiet", action="store_true", help="only IDs")
    ps.set_defaults(action=commands.ps)

    rm = sub.add_parser("rm", help="remove stopped containers")
    rm.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    rm.add_argument("containers", nargs="+")
    rm.set_defaults(action=commands.rm)

    words = sys.argv[1:] if argv is None else argv
    first = next((w for w in words if not w.startswith("-")), None)
    if first not in _NOT_IMAGE_COMMANDS:
        _add_image_commands(sub, commands)

    doctor = sub.add_parser("doctor", help="check that this machine can run containers")
    doctor.set_defaults(action=commands.doctor)

    system = sub.add_parser("system", help="manage minidocker's state")
    system_sub = system.add_subparsers(metavar="COMMAND", parser_class=_Parser)
    prune = system_sub.add_parser("prune", help="remove stopped containers and everything they left")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask (accepted for docker compatibility)")
    prune.set_defaults(action=commands.system_prune)
    return parser


def _add_image_commands(sub: argparse._SubParsersAction, commands) -> None:
    """images, tag, rmi, history, save, load, import, export, commit and ``image <verb>``."""

    def images(p: argparse.ArgumentParser) -> None:
        p.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
        p.add_argument("--no-trunc", action="store_true", help="full image IDs")
        p.set_defaults(action=commands.images)

    def inspect(p: argparse.ArgumentParser) -> None:
        p.add_argument("images", nargs="+", metavar="IMAGE")
        p.set_defaults(action=commands.image_inspect)

    def tag(p: argparse.ArgumentParser) -> None:
        p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
        p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
        p.set_defaults(action=commands.tag)

    def rmi(p: argparse.ArgumentParser) -> None:
        p.add_argument("-f", "--force", action="store_true", help="remove even if containers use it")
        p.add_argument("images", nargs="+", metavar="IMAGE")
        p.set_defaults(action=commands.rmi)

    def history(p: argparse.ArgumentParser) -> None:
        p.add_argument("--no-trunc", action="store_true", help="do not truncate CREATED BY")
        p.add_argument("image")
        p.set_defaults(action=commands.history)

    def save(p: argparse.ArgumentParser) -> None:
        p.add_argument("-o", "--output", help="write to this file (or directory, for --format oci)")
        p.add_argument("--format", choices=("docker", "oci"), default="docker",
                       help="docker: a docker-save tar (default); oci: an OCI image layout directory")
        p.add_argument("images", nargs="+", metavar="IMAGE")
        p.set_defaults(action=commands.save)

    def load(p: argparse.ArgumentParser) -> None:
        p.add_argument("-i", "--input", required=True,
                       help="a docker-save tar, an OCI layout tar, or an OCI layout directory")
        p.add_argument("--name", help="repository name for OCI layouts whose tags carry none")
        p.add_argument("-q", "--quiet", action="store_true")
        p.set_defaults(action=commands.load)

    def import_(p: argparse.ArgumentParser) -> None:
        p.add_argument("-m", "--message", default="", help="commit message for the history")
        p.add_argument("file", metavar="FILE|-")
        p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
        p.set_defaults(action=commands.import_)

    for name, add, text in (("images", images, "list images"), ("tag", tag, "give an image another name"),
                            ("rmi", rmi, "remove images"), ("history", history, "show an image's layers"),
                            ("save", save, "save images to a tar archive"),
                            ("load", load, "load images from a tar archive or an OCI layout"),
                            ("import", import_, "make an image of a root filesystem tarball")):
        add(sub.add_parser(name, help=text))

    export = sub.add_parser("export", help="export a container's filesystem as a tar archive")
    export.add_argument("-o", "--output", help="write to this file instead of stdout")
    export.add_argument("container")
    export.set_defaults(action=commands.export)

    commit = sub.add_parser("commit", help="create a new image from a container's changes")
    commit.add_argument("-m", "--message", default="")
    commit.add_argument("-a", "--author", default="")
    commit.add_argument("container")
    commit.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    commit.set_defaults(action=commands.commit)

    image = sub.add_parser("image", help="manage images")
    image_sub = image.add_subparsers(metavar="COMMAND", parser_class=_Parser)
    for name, add in (("ls", images), ("inspect", inspect), ("tag", tag), ("rm", rmi), ("history", history),
                      ("save", save), ("load", load), ("import", import_)):
        add(image_sub.add_parser(name))
    prune = image_sub.add_parser("prune", help="remove blobs and layers no image uses")
    prune.set_defaults(action=commands.image_prune)


def _version() -> str:
    from minidocker import __version__

    return __version__
