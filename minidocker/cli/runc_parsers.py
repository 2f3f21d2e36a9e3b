"""``minidocker-runc`` / ``minidocker runtime``: runc's command line as data (actions in runc.py).

The commands and flags are runc 1.1's, so that containerd's shim and dockerd can
drive it unchanged (they pass ``--root``, ``--log``, ``--log-format json``, ``create
--bundle B --pid-file F [--console-socket S]``, ``kill [--all] ID SIG``, ``delete
--force``, ``exec --process F --detach --pid-file F``). Global flags come before the
command and are read by :func:`minidocker.cli.runc.main`.
"""

from __future__ import annotations

from minidocker.cli import runc
from minidocker.cli.flags import Argument, Command, Option

__all__ = ["GLOBAL_OPTIONS", "build_runc_commands"]

# name -> (takes a value, help). Read before the command, as runc's (urfave/cli) are.
GLOBAL_OPTIONS = {
    "--root": (True, "root directory for storage of container state (default: /run/minidocker/runtime)"),
    "--log": (True, "the log file to write the runtime's logs to (default: stderr)"),
    "--log-format": (True, "'text' (default) or 'json'"),
    "--debug": (False, "enable debug logging"),
    "--systemd-cgroup": (False, "systemd cgroups (not supported: refused)"),
    "--rootless": (True, "ignore cgroup permission errors ('true', 'false', 'auto'; accepted, ignored)"),
    "--criu": (True, "path to criu (accepted, unused: no checkpoint/restore)"),
}


def build_runc_commands(prog: str = "minidocker-runc") -> Command:
    bundle = Option("-b --bundle", "path to the bundle directory (default: the current directory)", "value",
                    "DIR")
    pid_file = Option("--pid-file", "write the container's init PID to this file", "value", "FILE",
                      dest="pid_file")
    console = Option("--console-socket", "AF_UNIX socket that receives the pty master (process.terminal)",
                     "value", "PATH", dest="console_socket")
    no_pivot = Option("--no-pivot", "move the root with MS_MOVE + chroot instead of pivot_root (ramdisks)",
                      dest="no_pivot")
    keyring = Option("--no-new-keyring", "accepted for runc compatibility (no keyring is made)",
                     dest="no_new_keyring")
    preserve = Option("--preserve-fds", "pass N more fds (3 .. 3+N-1) to the process", "value", "N",
                      dest="preserve_fds", default="0")
    container = [Argument("container_id")]
    fmt = Option("-f --format", "table or json", "value", "FORMAT", default="table")
    create_flags = [bundle, console, pid_file, no_pivot, keyring, preserve]
    return Command(prog, "An OCI runtime (runc's command line) built to learn how runc works", subcommands=[
        Command("create", "Create a container: set up, its process waits for start", runc.create,
                options=create_flags, arguments=container),
        Command("start", "Start the process of a created container", runc.start, arguments=container),
        Command("state", "Print the state of a container as JSON", runc.state, arguments=container),
        Command("kill", "Send a signal (default SIGTERM) to the container's init", runc.kill,
                options=[Option("-a --all", "send it to all the container's processes", dest="all")],
                arguments=[Argument("container_id"), Argument("signal", "optional")]),
        Command("delete", "Delete a container (stopped, or created)", runc.delete,
                options=[Option("-f --force", "kill it first if it is running")], arguments=container),
        Command("run", "Create and start a container, then wait for it (unless --detach)", runc.run,
                options=[*create_flags, Option("-d --detach", "do not wait: the caller's subreaper will"),
                         Option("--keep", "do not delete the container after it exits")],
                arguments=container),
        Command("exec", "Run another process in a running container", runc.exec_, options=[
            console, Option("--cwd", "working directory", "value", "DIR"),
            Option("-e --env", "set an environment variable (repeatable)", "list", "KEY=VALUE"),
            Option("-t --tty", "allocate a pseudo-terminal (needs --console-socket)"),
            Option("-u --user", "UID[:GID]", "value", "UID[:GID]"),
            Option("-g --additional-gids", "an additional group (repeatable)", "list", "GID",
                   dest="additional_gids"),
            Option("-p --process", "a process.json (as in config.json) to run", "value", "FILE"),
            Option("-d --detach", "do not wait: the caller's subreaper will"), pid_file,
            Option("--process-label", "accepted, ignored (no SELinux)", "value", "LABEL",
                   dest="process_label"),
            Option("--apparmor", "accepted, ignored (no AppArmor)", "value", "PROFILE"),
            Option("--no-new-privs", "set no_new_privs for the process", dest="no_new_privs"),
            Option("-c --cap", "a capability to add (for the security chapter)", "list", "CAP"),
            preserve, Option("--ignore-paused", "accepted for runc compatibility", dest="ignore_paused"),
        ], arguments=[Argument("container_id"), Argument("command", "rest")], interspersed=False),
        Command("list", "List the containers of this root", runc.list_,
                options=[fmt, Option("-q --quiet", "IDs only")]),
        Command("ps", "List the processes of a container", runc.ps, options=[fmt],
                arguments=[Argument("container_id"), Argument("ps_args", "rest")], interspersed=False),
        Command("pause", "Freeze every process of a container", runc.pause, arguments=container),
        Command("resume", "Thaw a paused container", runc.resume, arguments=container),
        Command("spec", "Write a default config.json (like runc spec)", runc.spec,
                options=[bundle, Option("--rootless", "a spec for a rootless container (user namespace)")]),
        Command("features", "Print what this runtime supports, as JSON", runc.features),
    ])
