"""Graceful stop on SIGTERM and Ctrl+C, as gunicorn and uvicorn do it.

What a serving process does (werkzeug cuts every request in flight instead):

1. SIGTERM or a first Ctrl+C (SIGINT): accept no more connections, close idle
   keep-alive connections, let the requests in flight finish within the
   server's ``shutdown_timeout`` (their responses carry ``Connection:
   close``), then stop.
2. A second Ctrl+C stops at once (``KeyboardInterrupt``, the in-flight
   requests are cut). A second SIGTERM changes nothing: supervisors repeat it.
3. Then, as werkzeug: after Ctrl+C, ``serve_forever`` swallows the interrupt
   and ``run_simple`` returns; after SIGTERM the process ends as killed by
   SIGTERM (:func:`die_by` re-raises it with the default action after the
   cleanup), so a supervisor sees what it sent.

Who handles the signal
    ``serve_forever`` in the main thread installs the handlers and restores the
    previous ones when it returns; in any other thread it installs none
    (werkzeug's ``make_server`` + ``serve_forever`` in a thread). The reloader
    child serves in a daemon thread: its main thread handles the signal and
    asks every server in :data:`_serving` to stop (:func:`request_stop_all`).
    The reloader parent and the ``processes=N`` parent pass SIGTERM on and
    wait ``shutdown_timeout`` plus :data:`KILL_MARGIN` before SIGKILL; each
    pre-fork worker drains like a non-threaded server.

Rule: on a first signal a handler neither raises nor takes a lock
    In a non-threaded server (and in a pre-fork worker) the request in flight
    runs in the main thread, exactly where the handler runs: raising would cut
    it, and a lock held by the interrupted code would never be released. So
    the handler sets fields, writes the engine's wake-up byte
    (``Engine.request_drain``) and releases the server's drain thread
    (``Lock.release`` never blocks). The drain thread calls
    ``Engine.begin_drain``, waits for ``Engine.in_flight() == 0`` or the
    deadline, then stops the engine. Past the deadline, a request still
    running in the main thread is interrupted through the handler
    (:meth:`StopSignals.force`), the same way as by a second Ctrl+C.

Stopping to accept
    The process that owns the listening socket shuts it down
    (:func:`stop_listening`): connection attempts are refused at once, also
    while a pre-fork worker, a reloader child or a subprocess that inherited
    the descriptor still holds it. Shutting a listener down resets the
    connections queued on it, so the process that is about to do it first
    accepts them (``Engine.begin_drain`` with ``sweep_on_drain``) and serves
    them like the requests in flight. A pre-fork worker with its own
    ``SO_REUSEPORT`` listener does the same with that one (shut down, it
    leaves the group; see :mod:`fastserve._reuseport`). Processes that share
    a socket (reloader child, pre-fork workers on one socket) only take it
    out of their poller and leave its queue to its owner.
"""

from __future__ import annotations

import _thread
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "KILL_MARGIN",
    "SHUTDOWN_TIMEOUT",
    "STOP_SIGNALS",
    "StopSignals",
    "die_by",
    "request_stop_all",
    "stop_listening",
    "wait_all_stopped",
]

#: Default seconds the requests in flight get to finish after SIGTERM / Ctrl+C.
SHUTDOWN_TIMEOUT: Final = 10.0
#: Seconds a parent waits beyond ``shutdown_timeout`` before SIGKILL.
KILL_MARGIN: Final = 2.0
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

#: Servers inside ``serve_forever`` in this process (any thread).
_serving: set[Any] = set()


class StopSignals:
    """SIGTERM / SIGINT handlers for one serving call.

    :param on_first: called (in the handler) with the first signal's number;
        it must not block, and may raise only where no request is served.
    """

    def __init__(self, on_first: Callable[[int], None]) -> None:
        self.on_first = on_first
        #: the first stop signal received, or None
        self.received: int | None = None
        #: a second SIGINT raises KeyboardInterrupt only while armed
        self.armed = False
        self._previous: dict[int, Any] = {}
        self._lock = threading.Lock()

    def install(self, strict: bool = False) -> bool:
        """Install the handlers if this is the main thread.

        :param strict: in another thread, let :func:`signal.signal` raise
            ``ValueError`` (the reloader's contract) instead of returning False.
        :return: whether the handlers were installed.
        """
        if not strict and threading.current_thread() is not threading.main_thread():
            return False
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        self.armed = True
        return True

    def disarm(self) -> None:
        """From now on further signals are ignored (the cleanup runs)."""
        self.armed = False

    def restore(self) -> None:
        """Put the previous handlers back."""
        self.armed = False
        with self._lock:
            for signum, previous in self._previous.items():
                signal.signal(signum, signal.SIG_DFL if previous is None else previous)
            self._previous.clear()

    def force(self) -> None:
        """Interrupt the main thread now (a request still running past the
        deadline), as a second Ctrl+C does. Called from another thread."""
        with self._lock:
            if self.armed and self._previous:
                main = threading.main_thread().ident
                if hasattr(signal, "pthread_kill") and main is not None:
                    # a real signal: it also interrupts a blocking call (sleep,
                    # recv) of the application, interrupt_main() does not
                    signal.pthread_kill(main, signal.SIGINT)
                else:  # pragma: no cover - Windows
                    _thread.interrupt_main(signal.SIGINT)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum
            self.on_first(signum)
        elif signum == signal.SIGINT and self.armed:
            raise KeyboardInterrupt


def register(server: Any) -> None:
    """``server`` entered ``serve_forever``."""
    _serving.add(server)


def unregister(server: Any) -> None:
    """``server`` leaves ``serve_forever``."""
    _serving.discard(server)


def request_stop_all(signum: int) -> list[Any]:
    """Ask every serving server of this process to stop gracefully (safe in a
    signal handler). :return: those servers."""
    servers = list(_serving)
    for server in servers:
        server._request_stop(signum)
    return servers


def wait_all_stopped(servers: list[Any]) -> None:
    """Wait until each of ``servers`` left ``serve_forever``, at most its
    ``shutdown_timeout`` plus :data:`KILL_MARGIN`."""
    if not servers:
        return
    timeout = max(getattr(s, "shutdown_timeout", SHUTDOWN_TIMEOUT) for s in servers)
    deadline = time.monotonic() + timeout + KILL_MARGIN
    for server in servers:
        server._stopped.wait(max(0.0, deadline - time.monotonic()))


def stop_listening(sock: socket.socket | None) -> None:
    """Refuse new connections on a listening socket at once, in every process
    that shares it (Linux; elsewhere a no-op). Accepted connections go on."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def die_by(signum: int) -> None:
    """End this process as killed by ``signum`` (after the cleanup is done)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    # not reached unless the signal is blocked in this thread
    raise SystemExit(128 + signum)
