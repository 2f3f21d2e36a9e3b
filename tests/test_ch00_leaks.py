"""Chapter 00: the leak detector (tests/leaks.py) finds what a test leaves, even when it hides.

Every test runs under it (tests/conftest.py, ``no_leaks``): a detector that misses a kind of
leak lets every test leak it. These tests leave each kind on purpose, then clean up.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from leaks import _our_nft_tables, find_leaks, take_snapshot

from minidocker.forked import call_in_child
from minidocker.linux import CloneFlag, MountFlag, UmountFlag, mount, umount2, unshare

pytestmark = [pytest.mark.ch00, pytest.mark.root]


def test_a_mount_stacked_on_an_existing_mount_point_is_a_leak(state_root):
    point = state_root / "stacked"
    point.mkdir()
    mount("tmpfs", point, "tmpfs", 0, "size=1m")
    try:
        before = take_snapshot(state_root)
        mount("tmpfs", point, "tmpfs", 0, "size=1m")  # same mount point, a new mount
        try:
            assert f"mount {point}" in find_leaks(before, state_root)
        finally:
            umount2(point, UmountFlag.MNT_DETACH)
        assert f"mount {point}" not in find_leaks(before, state_root)
    finally:
        umount2(point, UmountFlag.MNT_DETACH)
        point.rmdir()


@pytest.mark.netns
def test_our_accept_left_in_dockers_user_chain_is_a_leak():
    """In a network namespace of its own (the host's firewall is never touched): the accept
    that minidocker puts into DOCKER-USER beside dockerd (network/nat.py), left behind."""
    if shutil.which("iptables") is None or shutil.which("nft") is None:
        pytest.fail("iptables and nft are in the Makefile's APT_PACKAGES")

    def in_new_netns() -> tuple[list[str], list[str]]:
        unshare(CloneFlag.CLONE_NEWNET)
        clean = _our_nft_tables()
        for args in (["-N", "DOCKER-USER"],
                     ["-I", "DOCKER-USER", "-i", "mdbr0", "-m", "comment", "--comment", "minidocker:net:0123456789ab",
                      "-j", "ACCEPT"]):
            subprocess.run(["iptables", "-w", *args], check=True, capture_output=True)
        return clean, _our_nft_tables()

    clean, left = call_in_child(in_new_netns)
    assert clean == []
    assert len(left) == 1 and "DOCKER-USER" in left[0] and "minidocker:net:0123456789ab" in left[0], left
