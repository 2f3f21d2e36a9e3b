"""The ``minidocker`` command as installed: a launcher that starts Python the fast way.

A console script written by pip starts ``python`` with ``site``: every ``.pth`` file in
site-packages runs (setuptools' editable-install finder among them) and each import
searches a long ``sys.path``. That is about 12 ms before minidocker's first line, on a
command whose whole job (``minidocker run --rm busybox true``) should take less than
``runc run``. minidocker needs only the standard library, so the launcher runs the
venv's interpreter isolated and without site (``-I -S``, written ``-IS`` because a
shebang passes a single argument) and puts the repository on ``sys.path`` itself::

    #!/work/main/.venv/bin/python -IS
    import gc; gc.disable()
    import sys
    sys.path.insert(0, '/work/main')
    from minidocker.cli.main import main_and_exit
    main_and_exit()

``main_and_exit`` skips the interpreter's tear-down (os._exit after flushing).
``gc.disable()``: the cyclic garbage collector would walk every object a few times
while the modules load (1-2 ms per command, which makes no cycles worth collecting;
reference counting still frees everything else). Commands end soon; the daemon,
which does not, turns the collector back on once it is up (cli/daemon.py).
See: gc.disable() in the Python docs.
``make venv`` writes it over pip's script with ``python -m minidocker.cli.launcher
.venv/bin/minidocker`` and links ``/usr/local/bin/minidocker`` to it.
``python -m minidocker`` keeps working and does the same thing, more slowly.
See: python(1) "-I" and "-S", execve(2) "Interpreter scripts".
"""

from __future__ import annotations

import os
import sys

__all__ = ["launcher_text", "write_launcher"]

# execve(2): the kernel reads at most this many bytes of "#!interpreter arg" (Linux 5.1+).
_SHEBANG_MAX = 255


ENTRIES = {"minidocker": "minidocker.cli.main", "minidockerd": "minidocker.cli.daemon",
           "minidocker-runc": "minidocker.cli.runc"}


def launcher_text(python: str, repo: str, site_packages: tuple[str, ...] = (),
                  module: str = "minidocker.cli.main") -> str:
    """The script: ``python`` with ``-IS``, ``repo`` first on ``sys.path``, then ``main()``.

    ``site_packages`` go at the *end* of ``sys.path``, without processing their .pth
    files: later chapters import third-party packages (pyroute2, zstandard) from there,
    and a path entry costs nothing until an import reaches it.
    """
    shebang = f"#!{python} -IS"
    if len(shebang) > _SHEBANG_MAX or any(c.isspace() for c in python):
        raise ValueError(f"cannot use {python!r} in a #! line: it is too long or has a space")
    return (
        f"{shebang}\n"
        "# minidocker's command, written by `make venv` (python -m minidocker.cli.launcher).\n"
        "# -I -S: no .pth files, no environment; the venv's site-packages are searched last\n"
        "# (the runtime path needs only the standard library). No cyclic GC while it starts.\n"
        "# See minidocker/cli/launcher.py.\n"
        "import gc; gc.disable()\n"
        "import sys\n"
        f"sys.path.insert(0, {repo!r})\n"
        f"sys.path.extend({list(site_packages)!r})\n"
        f"from {module} import main_and_exit\n"
        "main_and_exit()\n"
    )


def write_launcher(target: str, python: str | None = None, repo: str | None = None,
                   module: str | None = None) -> None:
    """Write the launcher to ``target`` atomically, mode 0755.

    Args:
        target: where, usually ``.venv/bin/minidocker`` (pip's script is replaced).
        python: the interpreter, by default this one as invoked (the venv's
            ``bin/python``, a symlink to the real binary, never a shim).
        repo: the directory holding the ``minidocker`` package, by default this one's.
        module: whose ``main_and_exit`` to call; by default chosen by the target's name
            (``minidocker``, ``minidockerd`` or ``minidocker-runc``, see :data:`ENTRIES`).
    """
    python = python or sys.executable
    repo = repo or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import site

    module = module or ENTRIES.get(os.path.basename(target), "minidocker.cli.main")
    text = launcher_text(os.path.abspath(python), os.path.abspath(repo),
                         tuple(p for p in site.getsitepackages() if os.path.isdir(p)), module)
    tmp = f"{target}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m minidocker.cli.launcher TARGET [MODULE]")
    write_launcher(sys.argv[1], module=sys.argv[2] if len(sys.argv) == 3 else None)
    print(f"wrote {sys.argv[1]}")
