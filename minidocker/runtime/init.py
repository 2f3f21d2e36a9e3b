"""The container side of the runtime: code that runs in the forked processes.

``stage1`` runs in the first child: it creates the namespaces, forks ``init`` and
leaves; ``init`` becomes PID 1 of the new PID namespace, builds the container's root
filesystem, waits at the exec fifo until ``start`` and execs the user's command. See the ladder diagram in
:mod:`minidocker.runtime.handshake`.

Rules for forked code (fork(2), _exit(2)): every path ends in ``os._exit``, never
by returning or raising into the caller's stack (that would be a second copy of the
CLI, or of a notebook kernel, running on); failures are reported over the pipe.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
# The C half of the signal module: the same functions and numbers, without the enums that
# `import signal` builds (bench/README.md, "OCI runtime").
import _signal as signal
import stat
import sys
import termios

from minidocker import rootfs
from minidocker.errors import ContainerError, MinidockerError
from minidocker.linux import CloneFlag, set_pdeathsig, sethostname, setns, unshare
from minidocker.namespaces import NAMESPACES, clone_flags
from minidocker.network import bring_up_loopback
from minidocker.runtime import pid1
from minidocker.runtime.exitstatus import EXIT_CANNOT_EXECUTE, EXIT_ENGINE_ERROR, EXIT_NOT_FOUND, ExitStatus
from minidocker.runtime.handshake import Channel, Message
from minidocker.runtime.spec import DEFAULT_PATH
from minidocker.security.process import apply_process_security

__all__ = ["INIT_ANNOTATION", "check_executable", "exec_process", "exit_like", "reset_signals", "stage1"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping
    from typing import Any, NoReturn

# Docker's --init puts tini in front of the command; we run pid1.reap_and_forward.
INIT_ANNOTATION = "org.minidocker.init"

# Python ignores SIGPIPE and SIGXFSZ at start-up; an exec'd program must not inherit
# that (``yes | head`` would never end). The others may carry our handlers.
_RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                  signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCHLD)


def stage1(spec: Mapping[str, Any], channel: Channel, console_socket: socket.socket | None,
           fifo_fd: int, options: Mapping[str, Any]) -> NoReturn:
    """First child: create the namespaces, fork init, report its PID and leave.

    It does not wait for init: once it is gone, init's parent is the nearest child
    subreaper above it (containerd's shim, ``minidocker run``) or the host's PID 1,
    so a created container outlives the ``create`` command that made it.
    """
    try:
        set_pdeathsig(signal.SIGKILL)  # the create command died: stop setting up
        os.setsid()  # out of the terminal's process group: Ctrl-C goes to the runtime, which forwards it
        namespaces = spec.get("linux", {}).get("namespaces", [])
        _join_existing(namespaces)
        flags = clone_flags(namespaces)
        if flags & CloneFlag.CLONE_NEWUSER:
            unshare(CloneFlag.CLONE_NEWUSER)
            channel.send(Message.USERNS_READY)
        channel.expect(Message.GO)
        if flags & CloneFlag.CLONE_NEWUSER:
            # Our host uid 0 is not in the map, so inside we are "nobody" until we take the
            # namespace's own root, which we may: we hold every capability in it.
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        unshare(flags & ~CloneFlag.CLONE_NEWUSER)
        if flags & CloneFlag.CLONE_NEWNS:
            rootfs.make_mounts_private(spec.get("linux", {}).get("rootfsPropagation"))
        overlay = spec.get("annotations", {}).get("org.minidocker.rootless-overlay")
        if overlay:   # rootless (chapter 11): only root in this user namespace may mount the overlay
            rootfs.mount("overlay", spec["root"]["path"], "overlay", 0, overlay)
        # init may not speak before PID is on the pipe (the parent expects PID first): its
        # first send waits for this gate to close, which we do right after sending PID; its
        # mounts go on meanwhile. Not by exiting: a process's fds close only after its address
        # space is torn down (exit_mm before exit_files in the kernel's do_exit), and for a
        # forked interpreter that took 3-25 ms. init is reparented before `start` can release
        # it: the parent reaps us (after READY) before create returns.
        gate_read, gate_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(gate_write)
            channel.hold_sends_until_eof(gate_read)
            _init(spec, channel, console_socket, flags, fifo_fd, options)
        channel.send(Message.PID, pid=pid)
        os.close(gate_write)
        os._exit(0)
    except BaseException as err:  # noqa: BLE001 - everything must end in os._exit
        _report(channel, f"failed to create namespaces: {err}")
    finally:
        os._exit(EXIT_ENGINE_ERROR)


def exit_like(status: int) -> NoReturn:
    """Leave with the same wait status as the process we waited for.

    An exit code is passed on; for a signal we kill ourselves with it, so that our
    parent sees "killed by SIGTERM", not "exited with 143" (util-linux unshare(1)
    --fork does the same). No core file for that: it would be ours, not theirs.
    """
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # these two cannot be caught or reset
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
        os._exit(ExitStatus(signal=sig).exit_code)  # only reached for a signal we cannot die of
    os._exit(ExitStatus.from_wait_status(status).exit_code)


def reset_signals() -> None:
    """Give an exec'd program default signal dispositions."""
    for sig in _RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


def exec_process(args: list[str], env: Mapping[str, str], channel: Channel | None) -> NoReturn:
    """execve the command, searching PATH from ``env``; report a failure like Docker.

    Docker's wording is kept on purpose: its CLI maps "executable file not found" and
    "no such file or directory" to exit status 127, "permission denied" to 126.
    """
    reset_signals()
    try:
        _execvpe(args, dict(env))
    except OSError as err:
        if err.errno == errno.ENOENT:
            code = EXIT_NOT_FOUND
            why = ("no such file or directory" if "/" in args[0]
                   else "executable file not found in $PATH")
        elif err.errno in (errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.EISDIR):
            code = EXIT_CANNOT_EXECUTE
            why = "permission denied" if err.errno != errno.ENOEXEC else "exec format error"
        else:
            code, why = EXIT_ENGINE_ERROR, os.strerror(err.errno or 0)
        message = f"exec: {args[0]!r}: {why}".replace("'", '"')
        if channel is not None:
            _report(channel, message, code)
        else:
            os.write(2, f"minidocker: {message}\n".encode())
        os._exit(code)


def _init(spec: Mapping[str, Any], channel: Channel, console_socket: socket.socket | None,
          flags: int, fifo_fd: int, options: Mapping[str, Any]) -> NoReturn:
    """PID 1: build the root filesystem, wait at the exec fifo, exec the command."""
    try:
        os.setsid()  # PID 1 leads its own session, as under runc
        process = spec["process"]
        _set_oom_score_adj(process.get("oomScoreAdj"))
        # Our fds as seen from the host's /proc, opened while it is still reachable: after
        # pivot_root or chroot, the container may have no /proc (see _wait_for_start).
        fd_dir = os.open("/proc/self/fd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        slave = _prepare_rootfs(spec, console_socket, flags, channel, options)
        if spec.get("hostname") and flags & CloneFlag.CLONE_NEWUTS:
            sethostname(spec["hostname"])
        if flags & CloneFlag.CLONE_NEWNET:
            bring_up_loopback()
        _set_stdio(slave)
        _enter_cwd(process.get("cwd", "/"))
        _set_rlimits(process.get("rlimits", []))
        env = dict(item.split("=", 1) for item in process.get("env", []))
        user = process.get("user", {})
        _check_executable_as(user, process["args"][0], env)  # runc too: a missing command fails create
        channel.send(Message.READY)
        channel.close()
        _wait_for_start(fifo_fd, fd_dir)
        if options.get("kill_with_parent"):
            set_pdeathsig(signal.SIGKILL)  # foreground `run`: our parent is now the runtime (a subreaper)
        _run_start_container_hooks(spec)
        for fd in range(3, 3 + int(options.get("preserve_fds", 0))):
            os.set_inheritable(fd, True)
        # The last step before the exec, after the fifo (as another user we could no longer open
        # our own /proc/self/fd: setuid makes a process non-dumpable, see proc(5)) and after every
        # mount and file above that needed privileges: the user, capabilities, no_new_privs and
        # the seccomp filter, in runc's order (chapter 11, minidocker/security/process.py).
        apply_process_security(spec, options.get("seccomp_program"))
        if spec.get("annotations", {}).get(INIT_ANNOTATION) == "true":
            pid1.reap_and_forward(lambda: exec_process(process["args"], env, None),
                                  terminal=slave is not None)
        exec_process(process["args"], env, None)
    except BaseException as err:  # noqa: BLE001
        if isinstance(err, MinidockerError):
            _report(channel, str(err), getattr(err, "exit_code", EXIT_ENGINE_ERROR))
        else:
            _report(channel, f"failed to set up the container: {err}")
    finally:
        os._exit(EXIT_ENGINE_ERROR)


def _execvpe(args: list[str], env: dict[str, str]) -> NoReturn:
    """``os.execvpe``, whose PATH lookup imports ``warnings``: a module not found once the root has moved.

    As execvp(3): each candidate in turn; the error raised is the first that is not
    ENOENT or ENOTDIR (a file there that cannot run), else the last.
    """
    first_real_error: OSError | None = None
    last_error: OSError | None = None
    for path in _candidates(args[0], env):
        try:
            os.execve(path, args, env)
        except (FileNotFoundError, NotADirectoryError) as err:
            last_error = err
        except OSError as err:
            last_error = err
            first_real_error = first_real_error or err
    raise first_real_error or last_error or FileNotFoundError(errno.ENOENT, "empty PATH", args[0])


def _candidates(name: str, env: Mapping[str, str]) -> list[str]:
    """Where ``name`` may be: itself if it has a '/', else each directory of ``PATH`` (empty: '.')."""
    if "/" in name:
        return [name]
    return [os.path.join(d or ".", name) for d in env.get("PATH", DEFAULT_PATH[5:]).split(":")]


def check_executable(name: str, env: Mapping[str, str]) -> None:
    """Raise ContainerError (127 or 126, Docker's words) unless ``name`` can be executed.

    Searched in ``PATH`` from ``env`` as execvpe(3) would. A file that exists but
    is not a valid executable (ENOEXEC) is found only by the exec itself.
    """
    candidates = _candidates(name, env)
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK, effective_ids=True):
            return
    if "/" not in name and not any(os.path.isfile(p) for p in candidates):
        raise ContainerError(f'exec: "{name}": executable file not found in $PATH', EXIT_NOT_FOUND)
    if not os.path.exists(candidates[0]) and "/" in name:
        raise ContainerError(f'exec: "{name}": no such file or directory', EXIT_NOT_FOUND)
    raise ContainerError(f'exec: "{name}": permission denied', EXIT_CANNOT_EXECUTE)


def _check_executable_as(user: Mapping[str, Any], name: str, env: Mapping[str, str]) -> None:
    """:func:`check_executable` with the user's effective ids for a moment (access(2) as they see it)."""
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    if uid == 0 and gid == 0:
        check_executable(name, env)
        return
    groups = os.getgroups()
    os.setgroups([int(g) for g in user.get("additionalGids", [])])
    os.setegid(gid)
    os.seteuid(uid)
    try:
        check_executable(name, env)
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


def _wait_for_start(fifo_fd: int, fd_dir: int) -> None:
    """Block until ``start`` opens the exec fifo, then tell it we go (see runtime/create.py).

    ``fifo_fd`` was opened with O_PATH before pivot_root, when the fifo's host path was
    still reachable; reopening it through /proc/self/fd/N gives a real, blocking
    O_WRONLY open of the same fifo (runc's trick, libcontainer/standard_init_linux.go).
    ``fd_dir`` is that /proc/self/fd directory, kept open from before pivot_root.
    """
    fd = os.open(str(fifo_fd), os.O_WRONLY | os.O_CLOEXEC, dir_fd=fd_dir)
    os.close(fd_dir)
    os.close(fifo_fd)
    os.write(fd, b"0")
    os.close(fd)


def _run_start_container_hooks(spec: Mapping[str, Any]) -> None:
    hooks = spec.get("hooks", {}).get("startContainer")
    if hooks:
        from minidocker.runtime.hooks import run_hooks

        run_hooks("startContainer", hooks, {"ociVersion": spec.get("ociVersion"), "status": "running",
                                             "pid": os.getpid()})


def _set_oom_score_adj(value: int | None) -> None:
    if value is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(int(value)))


def _set_rlimits(rlimits: list[Mapping[str, Any]]) -> None:
    """process.rlimits, before dropping root: raising a hard limit needs CAP_SYS_RESOURCE."""
    for entry in rlimits:
        name = entry.get("type", "")
        number = getattr(resource, name, None) if name.startswith("RLIMIT_") else None
        if number is None:
            raise ContainerError(f"failed to set rlimit: unknown type {name!r}")
        resource.setrlimit(number, (int(entry["soft"]), int(entry["hard"])))


def _join_existing(namespaces: list[Mapping[str, str]]) -> None:
    """setns into namespaces given by path (``--network container:NAME`` and the like)."""
    for entry in namespaces:
        if entry.get("path"):
            fd = os.open(entry["path"], os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, NAMESPACES[entry["type"]].flag)
            finally:
                os.close(fd)


def _prepare_rootfs(spec: Mapping[str, Any], console_socket: socket.socket | None, flags: int,
                    channel: Channel, options: Mapping[str, Any]) -> int | None:
    """Mounts, devices, console, hooks, pivot_root, sysctl, masked paths. Returns the pty slave fd, if any."""
    root = spec["root"]["path"]
    linux = spec.get("linux", {})
    joined = any(n.get("type") == "mount" and n.get("path") for n in linux.get("namespaces", []))
    if not flags & CloneFlag.CLONE_NEWNS and not joined:
        # SPEC: no mount namespace: the host's mount table is the container's, so we mount
        # nothing (it would be the host's) and only chroot into the root, as runc does.
        if spec.get("mounts"):
            os.write(2, b"minidocker: warning: no mount namespace: the config's mounts are not made\n")
        os.chroot(root)
        os.chdir("/")
        return None
    if joined:
        rootfs.make_mounts_private()  # a namespace joined by path: our mounts must not reach its peers
    rootfs.bind_onto_itself(root)
    mounts = spec.get("mounts", [])
    for entry in mounts:
        if entry.get("type") == "cgroup":
            _mount_cgroups(root, entry, bool(flags & CloneFlag.CLONE_NEWCGROUP))
        else:
            rootfs.mount_one(root, entry)
    if any(m["destination"] == "/dev" and m.get("type") == "tmpfs" for m in mounts):
        rootfs.create_devices(root)
    _create_spec_devices(root, linux.get("devices", []))   # --privileged: the host's (chapter 11)
    slave = None
    if spec["process"].get("terminal"):
        from minidocker.runtime import console  # only -t needs it: tty, select, termios ...

        master, slave, _ = console.open_pty(rootfs.join_in_root(root, "/dev/pts"))
        console_path = rootfs.join_in_root(root, "/dev/console")
        os.close(os.open(console_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
        rootfs.mount(f"/proc/self/fd/{slave}", console_path, None, rootfs.MountFlag.MS_BIND)
        if console_socket is None:
            raise ContainerError("process.terminal is true but no console socket was given",
                                 hint="pass --console-socket, or set terminal to false")
        console.send_fd(console_socket, master)
        os.close(master)
        console_socket.close()
    if options.get("runtime_hooks"):
        channel.send(Message.CREATE_RUNTIME)  # the parent runs prestart + createRuntime now
        channel.expect(Message.CREATE_RUNTIME_DONE)
    hooks = spec.get("hooks", {}).get("createContainer")
    if hooks:
        from minidocker.runtime.hooks import run_hooks

        run_hooks("createContainer", hooks, {"ociVersion": spec.get("ociVersion"), "status": "creating",
                                             "pid": os.getpid(), "bundle": options.get("bundle", "")})
    if options.get("no_pivot"):
        os.chdir(root)
        rootfs.mount(root, "/", None, rootfs.MountFlag.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
    else:
        rootfs.pivot_into(root)
    propagation = linux.get("rootfsPropagation")
    if propagation:
        rootfs.mount(None, "/", None, rootfs.parse_mount_options([propagation])[1])
    _write_sysctls(linux.get("sysctl", {}))
    if spec.get("domainname") and flags & CloneFlag.CLONE_NEWUTS:
        _write_proc_sys("kernel/domainname", spec["domainname"])
    rootfs.mask_paths(linux.get("maskedPaths", []))
    rootfs.make_readonly(linux.get("readonlyPaths", []))
    if spec["root"].get("readonly"):
        rootfs.mount(None, "/", None, rootfs.MountFlag.MS_BIND | rootfs.MountFlag.MS_REMOUNT
                     | rootfs.MountFlag.MS_RDONLY | rootfs.MountFlag.MS_REC)
    return slave


def _mount_cgroups(root: str, entry: Mapping[str, Any], own_namespace: bool) -> None:
    """A ``cgroup`` mount: the container's own groups, as runc mounts them.

    A cgroup v2 host gets one cgroup2 mount. On v1 (and hybrid) hosts a tmpfs holds one
    mount per hierarchy: with a cgroup namespace, a fresh mount with the host's
    controllers as options (rooted at the container's group by the namespace); without
    one, a bind of the container's own directory of that hierarchy (never the host's
    whole tree). See cgroup_namespaces(7), cgroups(7).
    """
    target = rootfs.join_in_root(root, entry["destination"])
    flags, _, _ = rootfs.parse_mount_options(entry.get("options", []))
    flags &= ~rootfs.MountFlag.MS_RDONLY  # made read-only last, when all is mounted
    readonly = "ro" in entry.get("options", [])
    os.makedirs(target, exist_ok=True)
    with open("/proc/self/mountinfo") as f:
        hierarchies = [(line.split()[4], line.split(" - ")[1].split()) for line in f
                       if line.split(" - ")[1].split()[0] in ("cgroup", "cgroup2")]
    ro = rootfs.MountFlag.MS_RDONLY if readonly else 0
    with open("/proc/self/cgroup") as f:  # "ID:CONTROLLERS:PATH"; "0::PATH" is v2
        own = {frozenset(c for c in line.split(":", 2)[1].split(",") if c): line.rstrip("\n").split(":", 2)[2]
               for line in f}
    if any(point == "/sys/fs/cgroup" and kind[0] == "cgroup2" for point, kind in hierarchies):
        if own_namespace:
            rootfs.mount("cgroup2", target, "cgroup2", flags | ro)
        else:
            _bind_cgroup(f"/sys/fs/cgroup{own.get(frozenset(), '/')}", target, flags | ro)
        return
    rootfs.mount("tmpfs", target, "tmpfs", flags, "mode=755")
    for point, (fstype, _, super_options) in hierarchies:
        if not point.startswith("/sys/fs/cgroup/"):
            continue
        name = point.rsplit("/", 1)[1]
        try:
            os.mkdir(os.path.join(target, name))
        except FileExistsError:
            pass
        controllers = [o for o in super_options.split(",") if o not in ("rw", "ro")]
        if own_namespace:
            rootfs.mount("cgroup", os.path.join(target, name), fstype, flags | ro,
                         ",".join(controllers) if fstype == "cgroup" else None)
        else:
            key = frozenset(controllers) if fstype == "cgroup" else frozenset()
            _bind_cgroup(point + own.get(key, "/").rstrip("/"), os.path.join(target, name), flags | ro)
    if readonly:
        rootfs.mount(None, target, None, rootfs.MountFlag.MS_BIND | rootfs.MountFlag.MS_REMOUNT
                     | rootfs.MountFlag.MS_RDONLY | flags)


def _bind_cgroup(source: str, target: os.PathLike[str], flags: int) -> None:
    rootfs.mount(source, target, None, rootfs.MountFlag.MS_BIND)
    rootfs.mount(None, target, None, rootfs.MountFlag.MS_BIND | rootfs.MountFlag.MS_REMOUNT | flags)


def _create_spec_devices(root: str, devices: list[Mapping[str, Any]]) -> None:
    """linux.devices: mknod each (c, b, u or p) with its mode and owner. See mknod(2).

    A name the runtime made already stays its own (/dev/ptmx is the link into the
    container's devpts, which ``--privileged``'s list of host devices also names).
    """
    kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    for device in devices:
        path = rootfs.join_in_root(root, device["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path):
            continue
        mode = int(device.get("fileMode", 0o666)) & 0o7777
        os.mknod(path, mode | kinds[device["type"]],
                 os.makedev(int(device.get("major", 0)), int(device.get("minor", 0))))
        os.chmod(path, mode)
        os.chown(path, int(device.get("uid", 0)), int(device.get("gid", 0)))


def _write_sysctls(sysctls: Mapping[str, str]) -> None:
    for key, value in sysctls.items():
        _write_proc_sys(key.replace(".", "/"), value)


def _write_proc_sys(key: str, value: str) -> None:
    try:
        with open(f"/proc/sys/{key}", "w") as f:
            f.write(str(value))
    except OSError as err:
        raise ContainerError(f"failed to write sysctl {key.replace('/', '.')}={value}: "
                             f"{err.strerror or err}") from None


def _set_stdio(slave: int | None) -> None:
    """Make the pty slave our stdin, stdout, stderr and controlling terminal.

    Without a terminal the runtime has already put the right fds at 0, 1, 2.
    See TIOCSCTTY in ioctl_tty(2).
    """
    if slave is None:
        return
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def _enter_cwd(cwd: str) -> None:
    # Docker creates a missing WORKDIR / -w directory instead of failing.
    os.makedirs(cwd, exist_ok=True)
    os.chdir(cwd)


def _report(channel: Channel, message: str, exit_code: int = EXIT_ENGINE_ERROR) -> None:
    try:
        channel.send_error(message, exit_code)
    except OSError:
        sys.stderr.write(f"minidocker: {message}\n")
