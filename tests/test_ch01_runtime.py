"""Chapter 01-03 runtime behaviour through the real CLI: exit codes, stdio, env, cwd."""

import pytest

pytestmark = [pytest.mark.ch01, pytest.mark.root]


def test_true_exits_zero(cli):
    r = cli("run", "--rm", "busybox", "true")
    assert r.code == 0, r
