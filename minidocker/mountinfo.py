"""The mount table, parsed: the one reader of /proc/PID/mountinfo.

For the doctor (where do cgroups and overlay live), ``system prune`` (what is still
mounted under the state roots) and the tests' leak detector (which compares mount IDs:
a mount stacked on an existing mount point is a new mount too). Plain file reading,
so the doctor can use it without loading the ctypes layer.

    read_mountinfo(pid) -> list[Mount]    /proc/PID/mountinfo
    parse_mountinfo(text) -> list[Mount]  the same from text (tests use samples)

See: proc(5), "/proc/pid/mountinfo".
"""

from __future__ import annotations

from minidocker.record import Record

__all__ = ["Mount", "parse_mountinfo", "read_mountinfo"]


class Mount(Record):
    """One line of mountinfo: its ID (unique while mounted, so two mounts stacked on one
    mount point differ), its parent's, where, what filesystem type, from what source."""

    FIELDS = ("mount_id", "parent_id", "mount_point", "fstype", "source", "super_options")
    DEFAULTS = {"mount_id": 0, "parent_id": 0, "super_options": ()}


def read_mountinfo(pid: int | str = "self") -> list[Mount]:
    """The mount table of ``pid``'s mount namespace. See proc(5), "/proc/pid/mountinfo"."""
    with open(f"/proc/{pid}/mountinfo") as f:
        return parse_mountinfo(f.read())


def parse_mountinfo(text: str) -> list[Mount]:
    """Fields 1, 2 and 5 (IDs, mount point) and, after the "-", type, source, super options."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-", 6)  # the optional fields (shared:N ...) end with a lone "-"
        mounts.append(Mount(
            mount_id=int(fields[0]), parent_id=int(fields[1]), mount_point=_unescape(fields[4]),
            fstype=fields[sep + 1], source=_unescape(fields[sep + 2]),
            super_options=tuple(fields[sep + 3].split(",")) if len(fields) > sep + 3 else (),
        ))
    return mounts


def _unescape(field: str) -> str:
    """The kernel writes space, tab, newline and backslash as \\040, \\011, \\012, \\134."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
