"""Chapter 11, security: what stops root in a container from being root on the host.

Each module is one defence; the notebook runs the attack first, then turns it on::

    capabilities   the 14 of 41 capabilities a container keeps; --cap-add/--cap-drop names
    process        apply_process_security(spec): user, capability sets, no_new_privs, seccomp,
                   in runc's order, the last thing the container's init does before exec
    seccomp        Docker's JSON profile -> OCI linux.seccomp -> a classic BPF program we build
    profile        the default seccomp profile, with the reason for each group
    devices        the host's device nodes, for --privileged
    options        run's --privileged, --cap-add, --cap-drop, --security-opt -> the spec

Masked and read-only paths (/proc/kcore, /proc/sys ...) are mounted by :mod:`minidocker.rootfs`.
The engine imports :mod:`.options`, the runtime :mod:`.process`; neither needs this package's
namespace, which stays empty so that importing one module does not import the others.
"""
