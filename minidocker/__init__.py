"""minidocker: a container runtime built one kernel concept at a time.

Chapter by chapter, the package gains (see README.md for the full map)::

    from minidocker.linux import unshare, setns, mount, umount2, pivot_root    # 01
    from minidocker.rootfs import chroot_into, pivot_into, mount_all           # 02
    from minidocker.namespaces import clone_flags, namespaces_of, enter        # 03
    from minidocker.runtime import default_spec, run, exec_in, ExitStatus      # 01-03
    from minidocker.doctor import run_checks                                   # 00
    from minidocker.runtime import create, start, state, kill, delete, Status  # 12

Importing the package is cheap: nothing below is imported until it is used.

Modules annotate with ``from __future__ import annotations`` (annotations stay strings)
and import what only the annotations name under ``TYPE_CHECKING = False`` / ``if
TYPE_CHECKING:``: a type checker reads those imports, Python never runs them. ``typing``,
``dataclasses`` (with ``inspect``), ``argparse``, ``subprocess`` and ``secrets`` each cost
milliseconds of every ``minidocker run``, a command benchmarked against runc
(bench/startup.py); tests/test_layout.py checks that none of them loads on that path.
"""

import sys

__version__ = "0.1.0"


def lazy_attributes(package: str, modules: dict[str, str]):
    """The ``__getattr__`` (PEP 562) of a package whose names are loaded on first use.

    ``modules`` maps each name to the submodule of ``package`` that defines it; a name
    loaded once is kept in the package, and found there directly from then on.
    ``__import__`` and not ``importlib.import_module``: importing importlib imports
    warnings, 0.5 ms of every runtime command's start (bench/README.md).
    See: PEP 562; the Python docs, ``__import__`` ("fromlist").
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> object:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(__import__(f"{package}.{module}", fromlist=(name,)), name)
        namespace[name] = value
        return value

    return __getattr__
