"""The readiness pollers behind :class:`fastserve._engine.Engine`.

Both take ``fd`` numbers and an interest (:data:`READ`, :data:`WRITE_READY`,
or 0: registered but not polled) and return ready ``(fd, events)`` pairs;
``_Poller`` is the one this platform uses: level-triggered epoll on Linux,
:mod:`selectors` elsewhere.
"""

from __future__ import annotations

import select
import selectors
from collections.abc import Callable
from typing import Any

__all__ = ["READ", "WRITE_READY", "_Poller"]

#: poller interest: readable / writable (0 = registered but disabled)
READ = 1
WRITE_READY = 4


class _EpollPoller:
    """Level-triggered epoll (Linux). A connection stays registered while a
    thread serves it; only when that thread stops being the leader is its
    connection disabled (see ``Engine.demote``), so a request costs no
    ``epoll_ctl`` call."""

    #: ready ``(fd, events)`` pairs, waiting at most ``timeout`` seconds (the
    #: epoll object's own method: no Python frame per poll)
    poll: Callable[[float], list[tuple[int, int]]]

    def __init__(self) -> None:
        self._ep = select.epoll()
        self.poll = self._ep.poll
        #: the descriptor the compiled loop waits on with epoll_wait() itself
        #: (``DispatchLoop.lead``; it reads only the ready descriptors, as poll() does)
        self.epoll_fd = self._ep.fileno()

    def add(self, fd: int, events: int = READ) -> None:
        self._ep.register(fd, events)

    def set(self, fd: int, events: int) -> None:
        """Change what ``fd`` is polled for (0: nothing, it stays registered)."""
        self._ep.modify(fd, events)

    def remove(self, fd: int) -> None:
        try:
            self._ep.unregister(fd)
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        self._ep.close()


class _SelectorPoller:
    """Portable fallback on :mod:`selectors` (disabled = unregistered)."""

    _EVENTS = {READ: selectors.EVENT_READ, WRITE_READY: selectors.EVENT_WRITE}

    #: no epoll here: the compiled loop calls :meth:`poll`
    epoll_fd = -1

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()

    def add(self, fd: int, events: int = READ) -> None:
        self.set(fd, events)

    def set(self, fd: int, events: int) -> None:
        """Change what ``fd`` is polled for (0: nothing)."""
        self.remove(fd)
        if events:
            self._sel.register(fd, self._EVENTS[events])

    def remove(self, fd: int) -> None:
        try:
            self._sel.unregister(fd)
        except (KeyError, ValueError):
            pass

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        """Ready ``(fd, events)`` pairs."""
        return [(key.fd, events) for key, events in self._sel.select(timeout)]

    def close(self) -> None:
        self._sel.close()


_Poller: Any = _EpollPoller if hasattr(select, "epoll") else _SelectorPoller
