"""Test helpers: layer tars and OCI layouts built from a few lines, and tree snapshots.

    layer_tar([("file", "a/b.txt", b"hi"), ("dir", "c"), ("symlink", "l", "/etc"),
               ("hardlink", "h", "a/b.txt"), ("whiteout", "a/gone"), ("opaque", "c"),
               ("chr", "dev/x", 1, 3), ("raw", TarInfo)])  -> bytes of an uncompressed tar
    write_layout(dir, [layer_bytes, ...], tag="latest", compression="gzip") -> manifest digest
    tree_of(root) -> {path: (kind, mode, uid, gid, content-or-target)} for comparing trees
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

__all__ = ["layer_tar", "merged_tree", "tree_of", "whiteout_image_layers", "write_layout"]


def layer_tar(entries, mtime: int = 1_700_000_000) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            kind, name = entry[0], entry[1] if len(entry) > 1 else ""
            if kind == "raw":
                info, data = entry[1], (entry[2] if len(entry) > 2 else None)
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
                continue
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = mtime, 0o644
            data = None
            if kind == "file":
                data = entry[2]
                info.size = len(data)
                if len(entry) > 3:
                    info.mode = entry[3]
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry[2]
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, entry[2]
            elif kind == "whiteout":
                parent, _, base = name.rpartition("/")
                info.name = f"{parent}/.wh.{base}" if parent else f".wh.{base}"
            elif kind == "opaque":
                info.name = f"{name}/.wh..wh..opq"
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, entry[2], entry[3]
            else:
                raise ValueError(kind)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def whiteout_image_layers(encoding: str = "docker") -> list[bytes]:
    """The 2-layer image of the issue: layer 2 deletes a file, empties a directory, replaces a directory."""
    base = layer_tar([
        ("dir", "data"), ("dir", "data/keep"), ("file", "data/keep/k.txt", b"keep\n"),
        ("dir", "data/opq"), ("file", "data/opq/old.txt", b"old\n"), ("file", "data/opq/old2.txt", b"old2\n"),
        ("file", "data/remove-me.txt", b"bye\n"),
        ("dir", "data/replace"), ("file", "data/replace/inner.txt", b"inner\n"),
        ("file", "data/hard-a", b"linked\n"), ("hardlink", "data/hard-b", "data/hard-a"),
        ("symlink", "data/link", "/data/keep/k.txt"),
    ])
    if encoding == "docker":      # docker's overlay2: opaque marker first, then the new sibling
        top = [("dir", "data"), ("dir", "data/opq"), ("opaque", "data/opq"), ("file", "data/opq/new.txt", b"new\n"),
               ("whiteout", "data/remove-me.txt"), ("file", "data/replace", b"now a file\n")]
    else:                         # umoci: one whiteout per lower file, no opaque marker
        top = [("dir", "data"), ("dir", "data/opq"), ("whiteout", "data/opq/old.txt"),
               ("whiteout", "data/opq/old2.txt"), ("file", "data/opq/new.txt", b"new\n"),
               ("whiteout", "data/remove-me.txt"), ("file", "data/replace", b"now a file\n")]
    return [base, layer_tar(top)]


def _compress(data: bytes, compression: str) -> tuple[bytes, str]:
    media = "application/vnd.oci.image.layer.v1.tar"
    if compression == "gzip":
        import gzip

        return gzip.compress(data, mtime=0), media + "+gzip"
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data), media + "+zstd"
    return data, media


def _put(blobs: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobs / digest[7:]).write_bytes(data)
    return digest


def write_layout(directory: Path, layers: list[bytes], tag: str = "latest", compression: str = "gzip",
                 config_extra: dict | None = None, corrupt: str | None = None) -> str:
    """An OCI layout with one image; ``corrupt="layer"`` writes a layer whose digest is wrong."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descriptors, diff_ids = [], []
    for data in layers:
        diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
        blob, media = _compress(data, compression)
        digest = _put(blobs, blob)
        if corrupt == "layer":
            (blobs / digest[7:]).write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
        descriptors.append({"mediaType": media, "digest": digest, "size": len(blob)})
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"], **(config_extra or {})},
              "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "history": [{"created_by": f"layer {i}"} for i in range(len(layers))]}
    if corrupt == "diff_id":
        config["rootfs"]["diff_ids"][-1] = "sha256:" + "0" * 64
    config_bytes = json.dumps(config).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": _put(blobs, config_bytes), "size": len(config_bytes)},
                "layers": descriptors}
    manifest_bytes = json.dumps(manifest).encode()
    digest = _put(blobs, manifest_bytes)
    index = {"schemaVersion": 2, "manifests": [{"mediaType": manifest["mediaType"], "digest": digest,
                                                 "size": len(manifest_bytes),
                                                 "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (directory / "index.json").write_text(json.dumps(index))
    return digest


def tree_of(root: Path, skip_root_meta: bool = True) -> dict[str, tuple]:
    """Every entry under ``root``: kind, mode, owner and content digest or link target."""
    root = Path(root)
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(directory) / name
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                value = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            elif stat.S_ISLNK(st.st_mode):
                value = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                value = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
            else:
                value = ""
            found[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, value)
    return found


def merged_tree(lowers: list[Path], mountpoint: Path) -> dict:
    """Mount ``lowers`` (top first) read-only in a child's private mount namespace; snapshot the tree."""
    from minidocker.forked import call_in_child

    def look():
        from minidocker.linux import CloneFlag, MountFlag, mount, unshare
        from minidocker.rootfs import make_mounts_private

        unshare(CloneFlag.CLONE_NEWNS)
        make_mounts_private()
        if len(lowers) == 1:
            mount(str(lowers[0]), mountpoint, None, MountFlag.MS_BIND)
        else:
            mount("overlay", mountpoint, "overlay", MountFlag.MS_RDONLY,
                  "lowerdir=" + ":".join(str(p) for p in lowers))
        return tree_of(mountpoint)

    mountpoint.mkdir(exist_ok=True)
    return call_in_child(look)
