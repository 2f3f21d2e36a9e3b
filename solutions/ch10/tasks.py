"""Chapter 10 exercises: volumes. Reference solutions.

    parse_volume(text)                      task 10.1  Docker's -v syntax as a mount request
    copy_up(source, destination)            task 10.2  fill an empty volume from an image directory
    oci_mounts(requests, volumes_root)      task 10.3  mount requests as OCI ``mounts`` entries

See: https://docs.docker.com/storage/volumes/, mount(2), the OCI runtime spec's config.md "Mounts".
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

__all__ = ["MODES", "PROPAGATIONS", "copy_up", "oci_mounts", "parse_volume"]

PROPAGATIONS = ("shared", "slave", "private", "rshared", "rslave", "rprivate")
MODES = ("ro", "rw", "z", "Z", "nocopy", *PROPAGATIONS)


def parse_volume(text: str) -> dict:
    """Read one ``-v`` value the way Docker does; return a dict with these keys:

    ``type`` ("bind" when the source is an absolute path, else "volume"), ``source`` (the host
    path, the volume's name, or "" for an anonymous volume), ``target``, ``readonly`` (bool),
    ``propagation`` (one of PROPAGATIONS, or "" when not given), ``nocopy`` (bool).

    Forms: ``/ctr`` (anonymous volume), ``SRC:/ctr``, ``SRC:/ctr:MODES`` where MODES is a
    comma-separated list taken from MODES. Raise ``ValueError`` for: more than three parts, an
    empty source or target, a target that is not absolute, an unknown mode, two modes of one
    kind (``ro,rw``, two propagations), and ``/ctr:ro`` (a mode without a source).

    Hint: ``text.split(":")`` and a ``len`` switch, as moby's linux_parser.go does.
    Questions: why can Docker not tell ``-v data:/x`` (a volume) from a relative host path?
    What does Docker do with a missing host directory given to ``-v``, and to ``--mount``?

    See: https://docs.docker.com/storage/bind-mounts/, moby volume/mounts/linux_parser.go.
    """
    parts = text.split(":")
    if len(parts) == 1:
        source, target, modes = "", parts[0], []
    elif len(parts) == 2:
        if all(m in MODES for m in parts[1].split(",")):
            raise ValueError(f"invalid volume specification: {text!r}: a mode needs a source")
        source, target, modes = parts[0], parts[1], []
    elif len(parts) == 3:
        source, target, modes = parts[0], parts[1], parts[2].split(",")
    else:
        raise ValueError(f"invalid volume specification: {text!r}")
    if (len(parts) > 1 and not source) or not target.startswith("/"):
        raise ValueError(f"invalid volume specification: {text!r}")
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"invalid mode: {mode}")
    kinds = [("rw" if m in ("ro", "rw") else "label" if m in ("z", "Z") else "prop" if m in PROPAGATIONS
              else m) for m in modes]
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"invalid mode: {','.join(modes)}: two of one kind")
    return {"type": "bind" if source.startswith("/") else "volume", "source": source, "target": target,
            "readonly": "ro" in modes, "propagation": next((m for m in modes if m in PROPAGATIONS), ""),
            "nocopy": "nocopy" in modes}


def copy_up(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> int:
    """Copy the content of image directory ``source`` into the empty directory ``destination``.

    Keep what Docker keeps: owner and group, mode bits (setuid and sticky too), modification
    times; symlinks are copied as symlinks (never followed), hard links stay hard links (one
    inode in the copy), fifos and devices are re-created. ``destination`` itself takes
    ``source``'s owner and mode. Return the number of entries copied (not counting the top).

    Hint: ``os.walk(source)`` does not follow symlinks to directories; ``os.lstat``,
    ``os.readlink``, ``os.mknod``, ``shutil.copyfileobj``; ``os.chown(..., follow_symlinks=False)``
    before ``os.chmod`` (why?); set a directory's times after filling it (why?).
    Questions: what would go wrong with ``shutil.copytree(source, destination)``'s defaults?
    And if the image's directory held a symlink to /etc/shadow?

    See: https://docs.docker.com/storage/volumes/ "Populate a volume using a container", lstat(2), mknod(2).
    """
    source, destination = Path(source), Path(destination)
    links: dict[tuple[int, int], Path] = {}
    count = 0
    dirs: list[tuple[Path, os.stat_result]] = []
    for top, subdirs, files in os.walk(source):
        rel = Path(top).relative_to(source)
        for name in sorted(subdirs + files):
            src, dst = Path(top) / name, destination / rel / name
            st = os.lstat(src)
            count += 1
            if stat.S_ISDIR(st.st_mode):
                dst.mkdir()
                os.chown(dst, st.st_uid, st.st_gid)
                os.chmod(dst, stat.S_IMODE(st.st_mode))
                dirs.append((dst, st))
                continue
            if st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
                os.link(links[(st.st_dev, st.st_ino)], dst)
                continue
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), dst)
            elif stat.S_ISREG(st.st_mode):
                with open(src, "rb") as fin, open(dst, "xb") as fout:
                    while chunk := fin.read(1 << 20):
                        fout.write(chunk)
            else:
                os.mknod(dst, st.st_mode, st.st_rdev)
            os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(dst, stat.S_IMODE(st.st_mode))
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            if st.st_nlink > 1:
                links[(st.st_dev, st.st_ino)] = dst
    for dst, st in reversed(dirs):   # deepest first: filling a directory changes its mtime
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    top = os.stat(source)
    os.chown(destination, top.st_uid, top.st_gid)
    os.chmod(destination, stat.S_IMODE(top.st_mode))
    return count


def oci_mounts(requests: Sequence[dict], volumes_root: str | os.PathLike[str]) -> list[dict]:
    """Turn mount requests into OCI runtime-spec ``mounts`` entries, as dockerd does for runc.

    A request is a dict like task 10.1's, with ``type`` "bind", "volume" or "tmpfs" (a tmpfs
    request may carry ``options``, a list such as ["size=64m", "mode=1777"]). Entries:

    - bind: ``{"destination": target, "type": "bind", "source": source, "options": ["rbind",
      PROPAGATION]}`` with PROPAGATION the request's or "rprivate", then "ro" if read-only;
    - volume: the same bind, its source ``VOLUMES_ROOT/NAME/_data``;
    - tmpfs: ``{"destination": target, "type": "tmpfs", "source": "tmpfs", "options":
      ["nosuid", "noexec", "nodev", *options]}`` (Docker's defaults, then the user's).

    Sorted so that a parent comes before what is mounted inside it (fewer path components
    first, the order of the requests otherwise). Raise ``ValueError`` for two requests with
    the same target, a target of "/", or a volume request without a name (the engine names
    anonymous volumes before this step).

    Hint: ``sorted`` is stable; count ``[p for p in target.split("/") if p]``.
    Questions: why must /data be mounted before /data/cache? Why "rbind" and not "bind"?

    See: the OCI runtime spec's config.md "Mounts", mount(2) "Creating a bind mount".
    """
    entries, seen = [], set()
    for request in requests:
        target = os.path.normpath(request["target"])
        if target == "/" or target in seen:
            raise ValueError(f"invalid mount target {target!r}: '/' or used twice")
        seen.add(target)
        if request["type"] == "tmpfs":
            entries.append({"destination": target, "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "noexec", "nodev", *request.get("options", [])]})
            continue
        source = request["source"]
        if request["type"] == "volume":
            if not source:
                raise ValueError(f"a volume at {target} needs a name")
            source = os.path.join(os.fspath(volumes_root), source, "_data")
        options = ["rbind", request.get("propagation") or "rprivate"]
        if request.get("readonly"):
            options.append("ro")
        entries.append({"destination": target, "type": "bind", "source": source, "options": options})
    return sorted(entries, key=lambda e: len([p for p in e["destination"].split("/") if p]))
