"""``processes=N``: pre-forked worker processes sharing the listening socket."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING

from . import _signals

if TYPE_CHECKING:
    from .server import BaseWSGIServer

__all__ = ["Prefork"]


class Prefork:
    """``processes=N``: N forked workers accepting on the shared socket.

    Graceful stop (see :mod:`fastserve._signals`): the server's handler records
    the signal; this loop notices it within 0.1 s, sends SIGTERM to every
    worker (each drains like a non-threaded server: no more accepts, its
    request in flight finishes with ``Connection: close``), shuts the listening
    socket down when this process bound it, and waits ``shutdown_timeout`` plus
    a margin before SIGKILL. :meth:`shutdown`, a second Ctrl+C and the
    reloader's restart end the workers at once.

    :param server: the bound server; each worker calls its ``_serve_worker``.
    :param processes: how many workers.
    """

    def __init__(self, server: BaseWSGIServer, processes: int) -> None:
        self.server = server
        self.processes = processes
        self.children: set[int] = set()

    def run(self, stop: threading.Event, poll_interval: float) -> None:
        """Fork the workers and keep them running until ``stop`` is set or a
        stop signal arrives (``server._stop_signal``)."""
        server = self.server
        tick = min(poll_interval, 0.1)
        # also when the interpreter exits another way (the reloader's exit 3)
        atexit.register(self._terminate)
        try:
            while not stop.is_set() and server._stop_signal is None:
                while len(self.children) < self.processes and not stop.is_set():
                    if server._stop_signal is not None:
                        break
                    self._spawn()
                stop.wait(tick)
                self._reap()
            if server._stop_signal is not None and not stop.is_set():
                self._drain(stop)
        finally:
            atexit.unregister(self._terminate)
            self._terminate()

    def _drain(self, stop: threading.Event) -> None:
        server = self.server
        self._send(signal.SIGTERM)
        if server._owns_listener:
            _signals.stop_listening(server.socket)
        deadline = time.monotonic() + server.shutdown_timeout + _signals.KILL_MARGIN
        while self.children and time.monotonic() < deadline and not stop.is_set():
            time.sleep(0.02)
            self._reap()

    def _spawn(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.children.add(pid)
            return
        code = 0
        try:
            # the parent's handlers are not this worker's: its own are
            # installed by _serve_worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.server._serve_worker(parent)
        except KeyboardInterrupt:
            pass
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _reap(self) -> None:
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.discard(pid)

    def _send(self, signum: int) -> None:
        for pid in self.children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def _terminate(self) -> None:
        """End the workers left at once (SIGKILL) and reap them."""
        self._send(signal.SIGKILL)
        for pid in self.children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.children.clear()
