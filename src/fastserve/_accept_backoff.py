"""The listener's rest when ``accept()`` runs out of file descriptors.

:class:`AcceptBackoff` is a base of :class:`fastserve._engine.Engine`: instead
of spinning on a listener that stays readable (level-triggered), the engine
stops polling it for ``accept_backoff`` seconds at a time, and logs one line
when such an episode starts and one, with the count of failed attempts, once
none failed for five seconds.
"""

from __future__ import annotations

import errno
import time
from typing import Any

from ._logging import _log
from ._pollers import READ
from ._settings import Settings

__all__ = ["_ACCEPT_EXHAUSTED", "AcceptBackoff"]


#: ``accept()`` errors that mean "out of a resource", not "this client"
_ACCEPT_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: seconds without an accept() failure that end an out-of-descriptors episode
_ACCEPT_QUIET = 5.0


class AcceptBackoff:
    """Pausing and resuming the listener (see the module docstring); the
    engine's ``__init__`` sets the fields."""

    poller: Any
    listen_fd: int
    settings: Settings
    draining: bool
    closed: bool
    #: the listener rests until this time (0: it is polled)
    _accept_resume: float
    _accept_failures: int
    _accept_last_failure: float
    _accept_error: str

    def _pause_accepting(self, error: OSError) -> None:
        """Out of descriptors (or memory): stop polling the listener for a
        while instead of spinning on it (it stays readable: level-triggered)."""
        self._accept_failures += 1
        backoff = self.settings.accept_backoff
        self._accept_last_failure = now = time.monotonic()
        self._accept_resume = now + backoff
        try:
            self.poller.set(self.listen_fd, 0)
        except (OSError, ValueError):
            pass
        if self._accept_failures == 1:
            self._accept_error = f"[Errno {error.errno}] {error.strerror}"
            _log(
                "error",
                f" * accept() failed: {self._accept_error}; new connections wait"
                f" (retrying every {backoff:g} s)",
            )

    def _resume_accepting(self) -> None:
        self._accept_resume = 0.0
        if self.draining or self.closed:
            return
        try:
            self.poller.set(self.listen_fd, READ)
        except (OSError, ValueError):
            pass

    def _accepting_again(self, now: float) -> None:
        """Called by the sweep: the episode ends after a quiet spell (so a
        listener that keeps running out logs two lines, not two per retry)."""
        if now - self._accept_last_failure >= _ACCEPT_QUIET:
            _log(
                "info",
                f" * accept() works again; {self._accept_failures} attempt(s) failed"
                f" ({self._accept_error})",
            )
            self._accept_failures = 0
