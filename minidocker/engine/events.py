"""The daemon's event stream: what ``docker events`` shows. Like dockerd's events service.

::

    bus = EventBus()
    bus.publish("container", "start", container.id, {"name": "web", "image": "busybox"})
    with bus.subscribe(since=time.time() - 60, filters={"type": ["container"]}) as sub:
        for event in sub.events(timeout=1.0):    # None every ``timeout`` without events
            ...

The last :data:`KEEP` events stay in memory for ``since`` (dockerd keeps 256); a
subscriber that does not read fast enough is dropped rather than slowing the
publisher, so that no container operation ever waits on a slow client.
See: docker-events(1), the Engine API's ``GET /events``.
"""

from __future__ import annotations

import collections
import queue
import threading
import time

from minidocker.errors import InvalidArgument
from minidocker.record import Record

__all__ = ["Event", "EventBus", "FILTER_KEYS", "Subscription"]

KEEP = 256
_BACKLOG = 1024  # events a subscriber may have unread before it is dropped
FILTER_KEYS = ("type", "event", "container", "image", "network", "volume", "label", "daemon", "scope")


class Event(Record):
    """One event: type (container, image, network, volume, daemon), action, actor ID and attributes."""

    FIELDS = ("type", "action", "actor_id", "attributes", "time_nano")

    def __init__(self, type: str, action: str, actor_id: str, attributes: dict[str, str],
                 time_nano: int) -> None:
        self.type, self.action, self.actor_id, self.attributes, self.time_nano = (
            type, action, actor_id, attributes, time_nano)

    def matches(self, filters: dict[str, list[str]]) -> bool:
        """``docker events --filter``: a key's values are alternatives (``label`` values all must hold),
        keys must all hold. Dockerd's rules (daemon/events/filter.go):

        - ``container``, ``network``, ``volume``, ``daemon``: the actor's ID or its ``name``
          attribute starts with a value, whatever the event's type (so ``container=web``
          leaves out image events);
        - ``image``: the image ID, or the container's ``image`` / the image's ``name``
          attribute, with or without its tag;
        - ``event``: the action exactly, or its part before ``:`` (``exec_start: sh``);
        - ``label``: every ``KEY`` or ``KEY=VALUE`` among the attributes.
        """
        name = self.attributes.get("name", "")
        for key, values in filters.items():
            if not values:
                continue
            if key == "type" and self.type not in values:
                return False
            if key == "scope" and "local" not in values:
                return False
            if key == "event" and self.action not in values and self.action.split(":")[0] not in values:
                return False
            if key in ("container", "network", "volume", "daemon") and not any(
                    self.actor_id.startswith(v) or name.startswith(v) for v in values):
                return False
            if key == "image" and not self._image_matches(values):
                return False
            if key == "label" and not all(_label_matches(self.attributes, v) for v in values):
                return False
        return True

    def _image_matches(self, values: list[str]) -> bool:
        name = self.attributes.get("name" if self.type == "image" else "image", "")
        candidates = {self.actor_id, name, _strip_tag(self.actor_id), _strip_tag(name)}
        return any(v in candidates for v in values)


def _strip_tag(name: str) -> str:
    """``busybox:latest`` -> ``busybox``; a registry's port stays (``host:5000/x``)."""
    if "@" in name:
        return name.split("@", 1)[0]
    head, sep, tail = name.rpartition(":")
    return head if sep and "/" not in tail else name


def _label_matches(attributes: dict[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in attributes and (not sep or attributes[key] == value)


class Subscription:
    """One listener's queue; iterate :meth:`events`; leave the ``with`` to unsubscribe."""

    def __init__(self, bus: EventBus, filters: dict[str, list[str]], until: float | None) -> None:
        self.bus, self.filters, self.until = bus, filters, until
        self.queue: queue.Queue = queue.Queue(_BACKLOG)
        self.dropped = False

    def offer(self, event: Event) -> None:
        if not event.matches(self.filters):
            return
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.dropped = True  # too slow: it ends (the client sees the stream close)

    def events(self, timeout: float = 1.0):
        """Matching events as they come; ``None`` after ``timeout`` seconds of silence (check the client).

        Ends at ``until`` or when dropped.
        """
        while not self.dropped:
            wait = timeout
            if self.until is not None:
                left = self.until - time.time()
                if left <= 0:
                    while not self.queue.empty():  # what was kept from before ``until`` goes out first
                        event = self.queue.get_nowait()
                        if event.time_nano <= self.until * 1e9:
                            yield event
                    return
                wait = min(wait, left)
            try:
                yield self.queue.get(timeout=wait)
            except queue.Empty:
                yield None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bus.unsubscribe(self)


class EventBus:
    """Publish events to every subscriber; keep the last :data:`KEEP` for ``since``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: collections.deque[Event] = collections.deque(maxlen=KEEP)
        self._subscribers: list[Subscription] = []

    def publish(self, type: str, action: str, actor_id: str,
                attributes: dict[str, str] | None = None) -> Event:
        event = Event(type, action, actor_id, dict(attributes or {}), time.time_ns())
        with self._lock:
            self._recent.append(event)
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub.offer(event)
        return event

    def subscribe(self, since: float | None = None, until: float | None = None,
                  filters: dict[str, list[str]] | None = None) -> Subscription:
        """A new listener, first given the kept events since ``since`` (Unix seconds)."""
        filters = filters or {}
        unknown = sorted(set(filters) - set(FILTER_KEYS))
        if unknown:
            raise InvalidArgument(f"invalid filter '{unknown[0]}'")
        sub = Subscription(self, filters, until)
        with self._lock:
            if since is not None:
                for event in self._recent:
                    if event.time_nano >= since * 1e9 and (until is None or event.time_nano <= until * 1e9):
                        sub.offer(event)
            self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    @property
    def listeners(self) -> int:
        return len(self._subscribers)
