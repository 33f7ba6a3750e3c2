"""A request body received in the poller, not in a thread.

:class:`BodyFeeding` lets the connection wait in the engine's poller, with a
deadline, for the body of a small request before the application runs
(``preread_limit``; ``body_timeout`` plus a second per ``body_min_rate`` bytes)
and for the unread rest of a body after the response, which is discarded to
keep the connection (``drain_limit`` bytes within ``drain_timeout``). The
engine hands it the bytes that arrive (:meth:`fastserve.connection.HTTPConnection._feed`).
"""

from __future__ import annotations

import time
from typing import Any

from ._body import EMPTY_INPUT
from ._reporting import Reporting
from ._transport import CLOSE, LINGER
from .errors import HTTPParseError

__all__ = ["BodyFeeding"]


class BodyFeeding(Reporting):
    """Feeding a body reader from the poller (see the module docstring)."""

    __slots__ = ()

    def _start_feeding(self, reader: Any, preread: bool) -> None:
        settings = self.settings
        self.feeding = reader
        self.preread = preread
        self.waiting = True
        if preread:
            self.deadline = self._body_deadline()
        else:
            self.body_received = 0
            self.deadline = time.monotonic() + settings.drain_timeout

    def _absorb(self, data: bytes) -> bool | int | None:
        """Give ``data`` to the reader being fed: True when feeding is over,
        None when it needs more, or the connection's fate (a bad chunk, a
        drain over its limit)."""
        reader = self.feeding
        settings = self.settings
        preread = self.preread
        try:
            extra = reader.feed(data)
        except HTTPParseError as e:
            self._stop_feeding()
            return self._refuse(e.status, e.reason, True) if preread else CLOSE
        if extra:
            self.buf = self.buf + extra if self.buf else extra
        self.body_received += len(data) - len(extra)
        if preread:
            if reader.wire_left() != 0 and self.body_received <= settings.preread_limit:
                self.deadline = self._body_deadline()
                return None
            # complete, or a chunked body that turned out large: the
            # application reads the rest itself
        else:
            reader.discard()
            if reader.wire_left() != 0:
                return None if self.body_received <= settings.drain_limit else LINGER
        self._stop_feeding()
        return True

    def _stop_feeding(self) -> None:
        self.feeding = None
        self.preread = False
        self.waiting = False

    def body_allows_keep_alive(self) -> bool:
        """At head time: can the rest of the request body be drained afterwards?"""
        reader = self.reader
        if reader is EMPTY_INPUT:
            return True
        left: int = reader.wire_left()
        if left == 0:
            return True
        if self.expect and not self.continue_sent:
            return False
        return left <= self.settings.drain_limit
