"""A few threads working through a list: the layers of a pull or a push. Chapter 07.

``concurrent.futures.ThreadPoolExecutor`` would do the same, but importing it costs about
14 ms here (it imports ``logging``), a twentieth of a whole pull; this is the part of it
that pull and push need::

    in_threads(download, layers, workers=3)   ->  [result or exception, ...] in the order of layers

A worker takes the next item when it is done with one, so at most ``workers`` run at once
(Docker's default: 3 downloads, 5 uploads). An exception ends only its own item: it is
returned in that item's place, and the caller decides what to do with the others.
See: https://docs.python.org/3/library/threading.html
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar
    T = TypeVar("T")
    R = TypeVar("R")

__all__ = ["in_threads"]


def in_threads(fn: Callable[[T], R], items: Sequence[T], workers: int,
               name: str = "worker") -> list[R | Exception]:
    """``fn(item)`` for every item, ``workers`` at a time; each result, or the exception it raised."""
    results: list[R | Exception | None] = [None] * len(items)
    upcoming = iter(range(len(items)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                i = next(upcoming, None)
            if i is None:
                return
            try:
                results[i] = fn(items[i])
            except Exception as err:  # noqa: BLE001 - handed back in the item's place
                results[i] = err

    count = max(1, min(workers, len(items)))
    threads = [threading.Thread(target=work, name=f"{name}-{n}") for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results  # type: ignore[return-value]
