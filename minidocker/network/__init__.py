"""Container networking. Chapter 09.

So far: bringing up ``lo`` in a new network namespace (what ``--network none`` gives).
"""

from minidocker.network.loopback import bring_up_loopback

__all__ = ["bring_up_loopback"]
