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

import sys

from minidocker import lazy_attributes

# Everything is loaded on first use (PEP 562), so that ``minidocker-runc start`` imports the
# start verb's modules and not create's, run's, delete's ... (each module is ~0.1 ms of every
# command's start-up, bench/README.md). name -> the module it lives in:
_LAZY = {"create": "create", "delete": "delete", "kill": "kill", "pause": "pause", "resume": "pause",
         "ContainerProcess": "run", "run": "run", "start": "start", "State": "state", "list_states": "state",
         "load": "state", "state": "state", "Status": "status", "ExitStatus": "exitstatus",
         "default_spec": "spec", "validate": "spec", "exec_in": "exec", "load_config": "bundle"}

__all__ = sorted(_LAZY)
__getattr__ = lazy_attributes(__name__, _LAZY)

_Module = type(sys)  # types.ModuleType, without importing types (0.3 ms)


class _Package(_Module):
    """This package, where ``runtime.start`` stays the function even once ``start.py`` is imported.

    The import system binds each submodule it loads as an attribute of its package
    (``setattr(runtime, "start", <module>)``); for the verbs named like their modules that
    would hide the function, so such a binding is dropped (``runtime.start`` is then found by
    ``__getattr__``, and the module stays in ``sys.modules``). See: importlib, "Submodules".
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _LAZY and isinstance(value, _Module):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
