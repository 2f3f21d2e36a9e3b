"""The runtime: takes an OCI config and runs it. Chapters 01-03 and 12.

Like runc, it knows nothing of images or registries: it gets a config (a dict
shaped like ``config.json``) whose ``root.path`` is a ready root filesystem.

    default_spec(rootfs, args, ...)   what ``runc spec`` writes            spec.py
    run(spec) -> ExitStatus           create, start, wait: ``runc run``     run.py
    ContainerProcess(spec)            the same, step by step               run.py
    exec_in(pid, args)                ``runc exec`` / ``docker exec``       exec.py
    ExitStatus                        exit codes like Docker's             exitstatus.py

See :mod:`minidocker.runtime.handshake` for how parent and container talk.
"""

from minidocker.runtime.exec import exec_in
from minidocker.runtime.exitstatus import ExitStatus
from minidocker.runtime.run import ContainerProcess, run
from minidocker.runtime.spec import default_spec, validate

__all__ = ["ContainerProcess", "ExitStatus", "default_spec", "exec_in", "run", "validate"]
