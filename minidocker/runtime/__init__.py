"""The runtime: an OCI runtime, the layer runc is in Docker. Chapters 01-03 and 12.

Like runc, it knows nothing of images or registries: it gets a bundle (a directory
with ``config.json`` and a root filesystem) or the same config as a dict. A container
lives in a state directory ``ROOT/ID`` (ROOT: ``/run/minidocker/runtime`` by default),
so every verb can be called from a different process, as containerd and dockerd call
runc::

    create(root, id, bundle) -> State     set up, init waits at the exec fifo  create.py
    start(root, id) -> State              init execs the process             start.py
    state(root, id) -> dict               the spec's state JSON              state.py
    load(root, id) -> State               the same as an object (refreshed)  state.py
    list_states(root) -> [State]          ``runc list``                      state.py
    kill(root, id, sig, all_processes)    through a pidfd: never a reused PID kill.py
    pause(root, id) / resume(root, id)    cgroup freezer                     pause.py
    delete(root, id, force=False)         cgroup, state dir, poststop hooks  delete.py
    Status                                created/running/... and can_*()    status.py

and, in the caller's process (it becomes the parent of init and can wait for it)::

    run(spec, stdio) -> ExitStatus        create, start, wait, delete        run.py
    ContainerProcess(spec)                the same, step by step             run.py
    exec_in(pid, args)                    ``runc exec`` / ``docker exec``     exec.py
    default_spec(rootfs, args, ...)       what ``runc spec`` writes          spec.py
    load_config(bundle)                   read + check config.json           bundle.py
    ExitStatus                            exit codes like Docker's           exitstatus.py

Errors: NotFound (no such ID), Conflict (ID in use), InvalidState (the verb is
not allowed in this status: "cannot start container X: it is running"),
InvalidArgument (a bad ID or config), ContainerError (the container side failed).
Who waits for a detached container's exit status: its init's parent, the nearest
child subreaper above ``create`` (see create.py). The command line over all this is
``minidocker runtime`` / ``minidocker-runc`` (minidocker/cli/runc.py).
See :mod:`minidocker.runtime.handshake` for how create and init talk.
"""

# The verbs are imported here, as the modules named after them would otherwise shadow
# them as attributes of this package; each keeps its heavy imports inside its functions.
from minidocker.runtime.create import create
from minidocker.runtime.delete import delete
from minidocker.runtime.kill import kill
from minidocker.runtime.pause import pause, resume
from minidocker.runtime.run import ContainerProcess, run
from minidocker.runtime.start import start
from minidocker.runtime.state import State, list_states, load, state
from minidocker.runtime.status import Status

# Loaded on first use (PEP 562); their names are not module names, so nothing shadows them.
_LAZY = {"ExitStatus": "exitstatus", "default_spec": "spec", "exec_in": "exec", "load_config": "bundle",
         "validate": "spec"}

__all__ = ["ContainerProcess", "ExitStatus", "State", "Status", "create", "default_spec", "delete", "exec_in",
           "kill", "list_states", "load", "load_config", "pause", "resume", "run", "start", "state", "validate"]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'minidocker.runtime' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"minidocker.runtime.{module}"), name)
    globals()[name] = value
    return value
