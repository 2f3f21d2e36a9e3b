"""The map of Docker that every notebook opens with: Docker's parts, and the chapter that rebuilds each.

Notebooks only (matplotlib is imported here, never by the runtime)::

    from minidocker.coursemap import draw_map
    draw_map("04")          # the whole map, chapter 04's parts highlighted
    draw_map("00")          # the whole map, every part coloured by its layer

``map_figure(chapter)`` returns the matplotlib ``Figure`` instead of showing it (the course site
saves it as an image). ``CHAPTERS`` holds each chapter's title; ``PARTS`` each box of the map,
with the chapters that rebuild it. The layers follow Docker's own split: a client talks HTTP to
the Engine API of dockerd; dockerd hands a container to containerd, whose shim runs runc with an
OCI bundle; runc asks the kernel for namespaces, cgroups and mounts. See
https://docs.docker.com/get-started/docker-overview/#docker-architecture and
https://github.com/opencontainers/runtime-spec.
"""

from __future__ import annotations

from typing import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CHAPTERS", "PARTS", "Part", "chapters_of", "draw_map", "map_figure"]

CHAPTERS: dict[str, str] = {
    "00": "welcome: the doctor and this map",
    "01": "processes and the kernel interface",
    "02": "filesystem isolation",
    "03": "namespaces",
    "04": "cgroups",
    "05": "layers",
    "06": "images",
    "07": "registries",
    "08": "building images",
    "09": "networking",
    "10": "volumes",
    "11": "security",
    "12": "the OCI runtime",
    "13": "the daemon",
    "14": "the API and the CLI",
}


class Part(NamedTuple):
    """One box of the map: what Docker calls it, what minidocker calls it, where it sits."""

    label: str
    detail: str
    layer: str
    chapters: tuple[str, ...]
    x: float
    y: float
    width: float
    height: float = 0.9


# Coordinates in map units: 16 wide, 9 high (1.4 to 10.4); the kernel at the bottom, the client at the top.
PARTS: tuple[Part, ...] = (
    # client
    Part("docker CLI", "minidocker CLI", "client", ("14", "01"), 0.2, 9.3, 3.1),
    Part("docker-py, SDKs", "the same HTTP calls", "client", ("14",), 3.5, 9.3, 3.1),
    Part("Dockerfile", "docker build's input", "client", ("08",), 6.8, 9.3, 3.1),
    Part("Engine API", "HTTP over /var/run/docker.sock", "client", ("14",), 0.2, 8.2, 9.7),
    # engine
    Part("images", "store, digests, save/load", "engine", ("06",), 0.4, 6.45, 2.3),
    Part("containers", "state, logs, exec, restart", "engine", ("13",), 2.9, 6.45, 2.3),
    Part("networks", "bridge, IPAM, -p", "engine", ("09",), 5.4, 6.45, 2.1),
    Part("volumes", "bind, named, tmpfs", "engine", ("10",), 7.7, 6.45, 2.0),
    Part("builds", "steps as containers, cache", "engine", ("08",), 9.9, 6.45, 2.3),
    # runtime
    Part("containerd", "containers, snapshots", "runtime", ("13",), 0.2, 4.75, 3.0),
    Part("containerd-shim", "one per container, keeps stdio", "runtime", ("13",), 3.4, 4.75, 3.4),
    Part("runc: OCI runtime", "config.json + rootfs bundle", "runtime", ("12", "01"), 7.0, 4.75, 5.2),
    # kernel mechanisms
    Part("processes", "fork, exec, wait, signals", "kernel", ("01",), 0.2, 2.85, 2.35),
    Part("rootfs", "pivot_root, /proc, /dev", "kernel", ("02",), 2.7, 2.85, 2.25),
    Part("namespaces", "uts, pid, mnt, net, user", "kernel", ("03",), 5.1, 2.85, 2.45),
    Part("cgroups", "memory, cpu, pids", "kernel", ("04",), 7.7, 2.85, 2.2),
    Part("overlayfs", "layers, copy-on-write", "kernel", ("05",), 0.2, 1.75, 2.3),
    Part("bind mounts, tmpfs", "volumes' mounts", "kernel", ("10",), 2.6, 1.75, 2.3),
    Part("veth, bridge", "netlink, routes", "kernel", ("09",), 5.0, 1.75, 2.3),
    Part("netfilter", "NAT, DNAT of ports", "kernel", ("09",), 7.4, 1.75, 2.3),
    Part("capabilities, seccomp", "no_new_privs, masks", "kernel", ("11",), 9.8, 1.75, 2.4),
    Part("system calls", "ctypes: minidocker.linux", "kernel", ("01",), 10.05, 2.85, 2.15),
    # the outside
    Part("registries", "Docker Hub, registry:2; pull, push", "registry", ("07",), 12.9, 6.45, 2.9, 1.5),
    Part("image formats", "OCI index, manifest, config", "registry", ("06", "07"), 12.9, 4.75, 2.9),
    Part("doctor", "can this machine run containers?", "course", ("00",), 10.4, 9.3, 2.8),
)

LAYER_COLOURS = {  # light fill, strong edge
    "client": ("#dbe8f6", "#2a6db0"),
    "engine": ("#dcf0dc", "#2f8a3a"),
    "runtime": ("#ece0f5", "#7a3fa6"),
    "kernel": ("#fbe7d3", "#c2661a"),
    "registry": ("#d8f1ef", "#1d8a80"),
    "course": ("#f2f2f2", "#555555"),
}
FRAMES = (  # the big boxes behind the parts: (label, x, y, width, height, layer)
    ("dockerd: the daemon (minidockerd)", 0.2, 6.1, 12.2, 1.75, "engine"),
    ("Linux kernel: the mechanisms a container is made of", 0.05, 1.55, 12.3, 2.6, "kernel"),
)
ARROWS = (  # (x1, y1, x2, y2, label)
    (5.0, 9.3, 5.0, 9.1, ""),
    (5.0, 8.2, 5.0, 7.85, "JSON"),
    (4.0, 6.1, 4.0, 5.65, "gRPC"),
    (9.6, 6.1, 9.6, 5.65, "OCI spec"),
    (6.1, 4.75, 6.1, 4.15, "syscalls"),
    (12.9, 7.2, 12.4, 7.2, ""),
)
HIGHLIGHT = ("#ffd24d", "#b22222")


def chapters_of(chapter: str) -> list[Part]:
    """The parts of the map chapter ``chapter`` ("04") rebuilds; "00" is the whole map."""
    chapter = _check(chapter)
    return list(PARTS) if chapter == "00" else [p for p in PARTS if chapter in p.chapters]


def _check(chapter: str | int) -> str:
    text = f"{int(chapter):02d}" if str(chapter).isdigit() else str(chapter)
    if text not in CHAPTERS:
        raise ValueError(f"no chapter {chapter!r} on the map (chapters: {', '.join(CHAPTERS)})")
    return text


def map_figure(chapter: str | int = "00") -> Figure:
    """Draw the map and return the figure: every part coloured (chapter "00") or this chapter's.

    The chapter's own parts are drawn in yellow with a red edge, the others in grey; each box names
    the Docker part, what plays it in minidocker, and the chapters that rebuild it.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    chapter = _check(chapter)
    whole = chapter == "00"
    mine = {p.label for p in chapters_of(chapter)}
    fig, ax = plt.subplots(figsize=(12, 6.9))
    ax.set_xlim(0, 16)
    ax.set_ylim(1.4, 10.4)
    ax.axis("off")

    for label, x, y, w, h, layer in FRAMES:
        fill, edge = LAYER_COLOURS[layer] if whole else ("#fafafa", "#bbbbbb")
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.15",
                                    facecolor=fill, edgecolor=edge, alpha=0.35, linewidth=1.0))
        ax.text(x + 0.12, y + h - 0.12, label, fontsize=8.5, va="top", color="#444444", style="italic")

    for part in PARTS:
        if whole:
            fill, edge = LAYER_COLOURS[part.layer]
            width, text_colour = 1.2, "black"
        elif part.label in mine:
            (fill, edge), width, text_colour = HIGHLIGHT, 2.6, "black"
        else:
            fill, edge, width, text_colour = "#eeeeee", "#aaaaaa", 0.8, "#888888"
        ax.add_patch(FancyBboxPatch((part.x, part.y), part.width, part.height,
                                    boxstyle="round,pad=0.02,rounding_size=0.12",
                                    facecolor=fill, edgecolor=edge, linewidth=width))
        cx = part.x + part.width / 2
        top = part.y + part.height
        ax.text(cx, top - 0.22, part.label, ha="center", va="center", fontsize=9.5,
                weight="bold", color=text_colour)
        ax.text(cx, top - 0.5, part.detail, ha="center", va="center", fontsize=7.5, color=text_colour)
        ax.text(cx, part.y + 0.14, "ch " + " · ".join(sorted(part.chapters)), ha="center",
                va="center", fontsize=7, color=edge if (whole or part.label in mine) else "#999999")

    for x1, y1, x2, y2, label in ARROWS:
        ax.add_patch(FancyArrowPatch((x1, y1), (x2, y2), arrowstyle="-|>", mutation_scale=12,
                                     color="#555555", linewidth=1.1))
        if label:
            ax.text(max(x1, x2) + 0.08, (y1 + y2) / 2, label, fontsize=7, va="center", color="#555555")

    if whole:
        title = "Docker's parts, and the chapter of this course that rebuilds each"
    else:
        title = f"Chapter {chapter} · {CHAPTERS[chapter]}: its part of Docker in yellow"
    ax.set_title(title, fontsize=12, loc="left")
    _legend(ax, chapter)
    fig.tight_layout()
    return fig


def _legend(ax, chapter: str) -> None:
    """The chapter list on the right: this chapter in bold."""
    lines = [(number, title) for number, title in CHAPTERS.items()]
    ax.text(12.75, 4.6, "chapters", fontsize=8.5, weight="bold", va="top")
    for i, (number, title) in enumerate(lines):
        bold = number == chapter and chapter != "00"
        ax.text(12.75, 4.33 - i * 0.19, f"{number}  {title}", fontsize=7, va="top",
                weight="bold" if bold else "normal", color="#b22222" if bold else "#333333")


def draw_map(chapter: str | int = "00") -> None:
    """Show the map in a notebook cell, chapter ``chapter``'s parts highlighted ("00": all)."""
    import matplotlib.pyplot as plt

    map_figure(chapter)
    plt.show()
