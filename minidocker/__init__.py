"""minidocker: a container runtime built one kernel concept at a time.

Chapter by chapter, the package gains (see README.md for the full map)::

    from minidocker.linux import unshare, setns, mount, umount2, pivot_root    # 01
    from minidocker.rootfs import chroot_into, pivot_into, mount_all           # 02
    from minidocker.namespaces import clone_flags, namespaces_of, enter        # 03
    from minidocker.runtime import default_spec, run, exec_in, ExitStatus      # 01-03
    from minidocker.doctor import run_checks                                   # 00
    from minidocker.runtime import create, start, state, kill, delete, Status  # 12

Importing the package is cheap: nothing below is imported until it is used.
"""

__version__ = "0.1.0"
